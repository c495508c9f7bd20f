#include "data/image.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include "data/color.h"
#include "data/error.h"
#include "data/files.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

std::string errorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Image, PngRoundTripIsExactTo8Bits) {
  test::TempDir dir;
  const torch::Tensor image = torch::rand({3, 17, 23});
  saveImage(dir / "x.png", image);
  const torch::Tensor back = loadImage(dir / "x.png");
  ASSERT_EQ(back.sizes(), image.sizes());
  EXPECT_LE((back - image).abs().max().item<float>(), 0.5f / 255 + 1e-6);
}

TEST(Image, EveryWritableFormatRoundTrips) {
  test::TempDir dir;
  const torch::Tensor image = torch::linspace(0, 1, 32 * 24).reshape({1, 24, 32}).repeat({3, 1, 1});
  for (const char* ext : {".jpg", ".png", ".webp", ".bmp", ".tiff"}) {
    saveImage(dir / (std::string("x") + ext), image);
    const torch::Tensor back = loadImage(dir / (std::string("x") + ext));
    ASSERT_EQ(back.sizes(), image.sizes()) << ext;
    EXPECT_LT((back - image).abs().mean().item<float>(), 0.02f) << ext;
  }
}

TEST(Image, GrayscaleBecomesRgbAndAlphaIsCompositedOverWhite) {
  test::TempDir dir;
  cv::Mat gray(8, 8, CV_8UC1, cv::Scalar(100));
  cv::imwrite((dir / "g.png").string(), gray);
  const torch::Tensor g = loadImage(dir / "g.png");
  ASSERT_EQ(g.sizes(), torch::IntArrayRef({3, 8, 8}));
  EXPECT_NEAR(g.mean().item<float>(), 100.0f / 255, 1e-4);

  cv::Mat rgba(4, 4, CV_8UC4, cv::Scalar(0, 0, 0, 0));   // fully transparent black
  rgba.at<cv::Vec4b>(0, 0) = cv::Vec4b(0, 0, 255, 255);  // one opaque red pixel (BGRA)
  cv::imwrite((dir / "a.png").string(), rgba);
  const torch::Tensor a = loadImage(dir / "a.png");
  EXPECT_NEAR(a[0][3][3].item<float>(), 1.0f, 1e-6);  // transparent → white
  EXPECT_NEAR(a[1][0][0].item<float>(), 0.0f, 1e-6);  // opaque red keeps no green
  EXPECT_NEAR(a[0][0][0].item<float>(), 1.0f, 1e-6);
}

TEST(Image, SixteenBitIsScaledToUnitRange) {
  test::TempDir dir;
  cv::Mat deep(4, 4, CV_16UC3, cv::Scalar(65535, 32768, 0));
  cv::imwrite((dir / "d.png").string(), deep);
  const torch::Tensor d = loadImage(dir / "d.png");
  EXPECT_NEAR(d[2].mean().item<float>(), 1.0f, 1e-5);  // B of BGR is our channel 2
  EXPECT_NEAR(d[1].mean().item<float>(), 0.5f, 1e-4);
}

TEST(Image, ExifOrientationIsApplied) {
  test::TempDir dir;
  cv::Mat m(10, 20, CV_8UC3, cv::Scalar(0, 0, 0));
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", m, jpeg);
  // An APP1 Exif segment (little-endian TIFF) with one IFD entry: Orientation (0x0112) = 6 (rotate 90° CW).
  const unsigned char exif[] = {0xFF, 0xE1, 0x00, 0x22, 'E',  'x',  'i',  'f',  0,    0,    'I',  'I',
                                0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x01, 0x03, 0x00,
                                0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  std::string bytes(jpeg.begin(), jpeg.begin() + 2);
  bytes.append(reinterpret_cast<const char*>(exif), sizeof exif);
  bytes.append(jpeg.begin() + 2, jpeg.end());
  writeFileAtomically(dir / "rotated.jpg", bytes);
  const torch::Tensor image = loadImage(dir / "rotated.jpg");
  EXPECT_EQ(image.size(1), 20);  // height and width swapped
  EXPECT_EQ(image.size(2), 10);
}

TEST(Image, BadInputsGiveOneLineErrorsNamingTheFile) {
  test::TempDir dir;
  const auto missing = (dir / "missing.jpg").string();
  EXPECT_EQ(errorOf([&] { loadImage(missing); }), missing + ": no such file");
  writeFileAtomically(dir / "empty.png", "");
  EXPECT_EQ(errorOf([&] { loadImage(dir / "empty.png"); }), (dir / "empty.png").string() + ": file is empty");
  writeFileAtomically(dir / "junk.jpg", "\xFF\xD8\xFF this is not really a jpeg");
  EXPECT_NE(errorOf([&] { loadImage(dir / "junk.jpg"); }).find("not a readable image"), std::string::npos);
  writeFileAtomically(dir / "text.png", "hello");
  EXPECT_EQ(errorOf([&] { loadImage(dir / "text.png"); }),
            (dir / "text.png").string() + ": not a JPEG, PNG, WebP, BMP, TIFF or PNM image");
  // The fuzzer's find: bytes that OpenCV hands to its DICOM decoder, whose assert aborted the process.
  const auto dicom = test::sourceDir() / "tests" / "fuzz" / "corpus" / "image" / "gdcm_abort.dcm";
  EXPECT_NE(errorOf([&] { loadImage(dicom); }).find("not a JPEG, PNG"), std::string::npos);
  // A WebP (by its first bytes) with DICOM's signature at byte 128: OpenCV would still pick DICOM.
  const auto disguised = test::sourceDir() / "tests" / "fuzz" / "corpus" / "image" / "webp_with_dicm_at_128.webp";
  EXPECT_NE(errorOf([&] { loadImage(disguised); }).find("not a JPEG, PNG"), std::string::npos);
  EXPECT_NE(errorOf([&] { loadImage(dir.path()); }).find("is a directory"), std::string::npos);

  saveImage(dir / "big.png", torch::zeros({3, 40, 50}));
  const std::string limit = errorOf([&] { loadImage(dir / "big.png", 1000); });
  EXPECT_NE(limit.find("50x40 exceeds the limit"), std::string::npos) << limit;

  EXPECT_NE(errorOf([&] {
              saveImage(dir / "out.gif", torch::zeros({3, 4, 4}));
            }).find("unknown image extension"),
            std::string::npos);
  EXPECT_NE(errorOf([&] {
              saveImage(dir / "no" / "out.png", torch::zeros({3, 4, 4}));
            }).find("does not exist"),
            std::string::npos);
}

TEST(Image, ResizeKeepsAspectAndRange) {
  const torch::Tensor image = torch::rand({3, 100, 60});
  const torch::Tensor small = resizeLongSide(image, 50);
  EXPECT_EQ(small.sizes(), torch::IntArrayRef({3, 50, 30}));
  EXPECT_GE(small.min().item<float>(), 0.0f);
  EXPECT_LE(small.max().item<float>(), 1.0f);
  EXPECT_NEAR(small.mean().item<float>(), image.mean().item<float>(), 0.01);
  EXPECT_EQ(resizeImage(torch::rand({2, 3, 8, 8}), 16, 4).sizes(), torch::IntArrayRef({2, 3, 16, 4}));
}

TEST(Image, JpegRoundTripAddsCodecErrorThatShrinksWithQuality) {
  // A ramp and stripes, as a batch of two.
  const torch::Tensor ramp = torch::linspace(0, 1, 64).view({1, 1, 64}).expand({3, 48, 64});
  const torch::Tensor stripes = 0.5 + 0.3 * torch::sin(torch::arange(48).view({1, 48, 1}) * 0.9).expand({3, 48, 64});
  const torch::Tensor image = torch::stack({ramp, stripes});
  const torch::Tensor low = jpegRoundTrip(image, 20), high = jpegRoundTrip(image, 95);
  EXPECT_EQ(low.sizes(), image.sizes());
  EXPECT_EQ(low.scalar_type(), torch::kFloat32);
  const double lowError = (low - image).abs().mean().item<double>(),
               highError = (high - image).abs().mean().item<double>();
  EXPECT_GT(highError, 0);
  EXPECT_GT(lowError, 2 * highError);
  EXPECT_LT(lowError, 0.05);  // still the same picture
}

TEST(Image, TransferLuminanceKeepsContentChromaAndStylizedLuma) {
  const torch::Tensor content = torch::rand({3, 8, 8});
  const torch::Tensor stylized = torch::rand({3, 8, 8}) * 0.5 + 0.25;
  const torch::Tensor out = transferLuminance(stylized, content);
  auto luma = [](const torch::Tensor& x) { return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]; };
  // Where no clamping happened, luminance equals the stylized image's.
  const torch::Tensor unclamped = ((out > 0.001) & (out < 0.999)).all(0);
  EXPECT_LT((luma(out) - luma(stylized)).abs().masked_select(unclamped).max().item<float>(), 2e-3);
  EXPECT_TRUE(torch::allclose(transferLuminance(content, content), content, 1e-3, 2e-3));
}

}  // namespace
}  // namespace stylize
