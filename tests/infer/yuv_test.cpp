// The tensor YUV conversion (what a GPU runs) held to swscale's (what the CPU pipeline runs) within one
// 8-bit level, for every matrix, both ranges and both bit depths, both ways.
#include "infer/yuv.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "infer/ffmpeg.h"
#include "infer/video_decoder.h"
#include "tests/infer/video_fixture.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

using Matrix = YuvFormat::Matrix;

int swsSpace(Matrix m) {
  return m == Matrix::kBt601 ? SWS_CS_ITU601 : m == Matrix::kBt2020 ? SWS_CS_BT2020 : SWS_CS_ITU709;
}

std::vector<YuvFormat> allFormats() {
  std::vector<YuvFormat> formats;
  for (Matrix m : {Matrix::kBt601, Matrix::kBt709, Matrix::kBt2020})
    for (bool full : {false, true})
      for (int bits : {8, 10}) formats.push_back({m, full, bits});
  return formats;
}

std::string describe(const YuvFormat& f) {
  return std::string(f.matrix == Matrix::kBt601   ? "BT.601"
                     : f.matrix == Matrix::kBt709 ? "BT.709"
                                                  : "BT.2020") +
         (f.fullRange ? " full " : " limited ") + std::to_string(f.bits) + "-bit";
}

// A tensor [H, W] of the plane's samples, copied out of an AVFrame plane.
torch::Tensor planeOf(const AVFrame& frame, int plane, int64_t height, int64_t width, int bytes) {
  const auto type = bytes == 1 ? torch::kUInt8 : torch::kInt16;
  return torch::from_blob(frame.data[plane], {height, width}, {frame.linesize[plane] / bytes, 1}, type).clone();
}

// Planes of real colours: random RGB per 2×2 block through rgbToYuv, then luma noise of a few codes, as a
// camera's. (Arbitrary code triples are mostly outside the RGB cube, where swscale's fixed-point clipping
// wraps around: no decoder produces them.)
YuvPlanes randomPlanes(int64_t height, int64_t width, const YuvFormat& format) {
  const torch::Tensor rgb = torch::rand({3, height / 2, width / 2}).repeat_interleave(2, 1).repeat_interleave(2, 2);
  YuvPlanes planes = rgbToYuv(rgb, format);
  const int64_t noise = format.bits == 8 ? 3 : 12, max = (1 << format.bits) - 1;
  planes.y = (planes.y.to(torch::kInt32) + torch::randint(-noise, noise + 1, planes.y.sizes()))
                 .clamp(0, max)
                 .to(planes.y.scalar_type());
  return planes;
}

TEST(Yuv, DecodingMatchesSwscaleWithinOneLevel) {
  torch::manual_seed(7);
  const int width = 38, height = 22;
  for (const YuvFormat& f : allFormats()) {
    const YuvPlanes planes = randomPlanes(height, width, f);
    const AVPixelFormat format = f.bits == 8 ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_YUV420P10LE;
    av::FramePtr yuv = av::allocFrame(format, width, height);
    const int bytes = f.bits == 8 ? 1 : 2;
    const torch::Tensor* sources[] = {&planes.y, &planes.u, &planes.v};
    for (int p = 0; p < 3; ++p) {
      const torch::Tensor& t = *sources[p];
      for (int64_t row = 0; row < t.size(0); ++row)
        std::memcpy(yuv->data[p] + row * yuv->linesize[p], t[row].contiguous().data_ptr(), t.size(1) * bytes);
    }
    // Point sampling repeats each chroma sample over its 2×2 block, as yuvToRgb does.
    av::SwsPtr sws(sws_getContext(width, height, format, width, height, AV_PIX_FMT_RGB24,
                                  SWS_POINT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
    ASSERT_TRUE(sws);
    sws_setColorspaceDetails(sws.get(), sws_getCoefficients(swsSpace(f.matrix)), f.fullRange,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    av::FramePtr rgb = av::allocFrame(AV_PIX_FMT_RGB24, width, height);
    sws_scale(sws.get(), yuv->data, yuv->linesize, 0, height, rgb->data, rgb->linesize);
    const torch::Tensor reference =
        torch::from_blob(rgb->data[0], {height, width, 3}, {rgb->linesize[0], 3, 1}, torch::kUInt8)
            .permute({2, 0, 1})
            .to(torch::kInt32);
    const torch::Tensor ours = yuvToRgb(planes, f).mul(255).round().to(torch::kInt32);
    EXPECT_LE((ours - reference).abs().max().item<int>(), 1) << describe(f);

    // NV12/P010-style interleaved chroma gives the same picture.
    YuvPlanes interleaved{planes.y, {}, {}, torch::stack({planes.u, planes.v}, 2)};
    EXPECT_TRUE(torch::equal(yuvToRgb(interleaved, f), yuvToRgb(planes, f))) << describe(f);
  }
}

TEST(Yuv, EncodingMatchesSwscaleWithinOneLevel) {
  torch::manual_seed(8);
  const int width = 38, height = 22;
  // Each 2×2 block one colour: how chroma is subsampled then does not matter, only the arithmetic.
  const torch::Tensor rgb = torch::rand({3, height / 2, width / 2}).repeat_interleave(2, 1).repeat_interleave(2, 2);
  for (const YuvFormat& f : allFormats()) {
    const AVPixelFormat format = f.bits == 8 ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_YUV420P10LE;
    const torch::Tensor bytes = rgb.mul(255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
    av::FramePtr in = av::allocFrame(AV_PIX_FMT_RGB24, width, height);
    for (int row = 0; row < height; ++row)
      std::memcpy(in->data[0] + row * in->linesize[0], bytes[row].data_ptr(), width * 3);
    av::SwsPtr sws(sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, format,
                                  SWS_POINT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
    sws_setColorspaceDetails(sws.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1, sws_getCoefficients(swsSpace(f.matrix)),
                             f.fullRange, 0, 1 << 16, 1 << 16);
    av::FramePtr out = av::allocFrame(format, width, height);
    sws_scale(sws.get(), in->data, in->linesize, 0, height, out->data, out->linesize);
    const YuvPlanes ours = rgbToYuv(bytes.permute({2, 0, 1}).to(torch::kFloat32).div(255), f);
    const int size = f.bits == 8 ? 1 : 2;
    // One 8-bit level is four 10-bit codes.
    const int tolerance = f.bits == 8 ? 1 : 4;
    const torch::Tensor* planes[] = {&ours.y, &ours.u, &ours.v};
    for (int p = 0; p < 3; ++p) {
      const int64_t rows = p == 0 ? height : height / 2, cols = p == 0 ? width : width / 2;
      const torch::Tensor reference = planeOf(*out, p, rows, cols, size).to(torch::kInt32);
      EXPECT_LE((planes[p]->to(torch::kInt32) - reference).abs().max().item<int>(), tolerance)
          << describe(f) << " plane " << p;
    }
  }
}

TEST(Yuv, RoundTripKeepsSmoothPicturesAndOddSizes) {
  const int height = 23, width = 37;  // odd: the last chroma row and column cover half blocks
  const auto ys = torch::linspace(0, 1, height).view({1, height, 1}),
             xs = torch::linspace(0, 1, width).view({1, 1, width});
  const torch::Tensor rgb =
      torch::cat({ys.expand({1, height, width}), xs.expand({1, height, width}), (ys * xs).expand({1, height, width})});
  for (const YuvFormat& f : allFormats()) {
    const YuvPlanes planes = rgbToYuv(rgb, f);
    EXPECT_EQ(planes.y.sizes(), torch::IntArrayRef({height, width}));
    EXPECT_EQ(planes.u.sizes(), torch::IntArrayRef({12, 19}));
    // Smooth colour: 4:2:0 loses little; 8-bit quantisation a few levels at most.
    EXPECT_LT((yuvToRgb(planes, f) - rgb).abs().max().item<float>(), 0.04f) << describe(f);
  }
}

// Real decoded frames (the bundled clip, H.264 4:2:0, and a 10-bit lossless one) through both conversions.
TEST(Yuv, RealDecodedFramesMatchSwscaleWithinOneLevel) {
  av::quietLogs();
  test::TempDir dir;
  test::VideoSpec spec;
  spec.width = 70, spec.height = 46;
  spec.framesMs = test::constantRate(5, 25);
  spec.videoCodec = AV_CODEC_ID_FFV1;
  spec.pixelFormat = AV_PIX_FMT_YUV420P10LE;
  test::writeTestVideo(dir / "ten_bit.mkv", spec);
  for (const std::string& clip :
       {(test::sourceDir() / "samples/video/car_detection.mp4").string(), (dir / "ten_bit.mkv").string()}) {
    ReadOptions read;
    read.keepYuv = true;
    read.duration = 0.4;
    VideoDecoder decoder(clip, read);
    VideoDecoder::Item item;
    int frames = 0;
    while (decoder.next(item)) {
      if (!item.frame) continue;
      const AVFrame& f = *item.frame;
      const auto planes = av::framePlanes(f);
      ASSERT_TRUE(planes) << clip << ": " << av_get_pix_fmt_name(AVPixelFormat(f.format));
      const YuvFormat format = av::frameYuvFormat(f);
      av::SwsPtr sws(sws_getContext(f.width, f.height, AVPixelFormat(f.format), f.width, f.height, AV_PIX_FMT_RGB24,
                                    SWS_POINT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
      sws_setColorspaceDetails(sws.get(), sws_getCoefficients(swsSpace(format.matrix)), format.fullRange,
                               sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
      av::FramePtr rgb = av::allocFrame(AV_PIX_FMT_RGB24, f.width, f.height);
      sws_scale(sws.get(), f.data, f.linesize, 0, f.height, rgb->data, rgb->linesize);
      const torch::Tensor reference =
          torch::from_blob(rgb->data[0], {f.height, f.width, 3}, {rgb->linesize[0], 3, 1}, torch::kUInt8)
              .permute({2, 0, 1})
              .to(torch::kInt32);
      const torch::Tensor ours = yuvToRgb(*planes, format).mul(255).round().to(torch::kInt32);
      EXPECT_LE((ours - reference).abs().max().item<int>(), 1) << clip << " frame " << frames;
      ++frames;
    }
    EXPECT_GE(frames, 5) << clip;
  }
}

}  // namespace
}  // namespace stylize
