#include "infer/hw_decode.h"

#include <torch/cuda.h>
#include <torch/torch.h>

extern "C" {
#include <libavutil/hwcontext.h>
}

#include "data/error.h"

namespace stylize {
namespace {

// AV_CUDA_USE_PRIMARY_CONTEXT from libavutil/hwcontext_cuda.h, which needs CUDA's own headers: decode into
// the device's primary context, the one LibTorch uses, so the frames' pointers are valid for its kernels.
constexpr int kUsePrimaryContext = 1;

struct BufferDeleter {
  void operator()(AVBufferRef* b) const { av_buffer_unref(&b); }
};

// Offered formats: take CUDA frames when the decoder can make them, else the first software format.
AVPixelFormat pickCudaFormat(AVCodecContext*, const AVPixelFormat* formats) {
  for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f)
    if (*f == AV_PIX_FMT_CUDA) return *f;
  for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f)
    if (!(av_pix_fmt_desc_get(*f)->flags & AV_PIX_FMT_FLAG_HWACCEL)) return *f;
  return AV_PIX_FMT_NONE;
}

}  // namespace

HwAccel parseHwAccel(const std::string& name) {
  if (name == "none") return HwAccel::kNone;
  if (name == "auto") return HwAccel::kAuto;
  if (name == "cuda") return HwAccel::kCuda;
  throw Error("--hwaccel must be auto, none or cuda, not '" + name + "'");
}

bool enableCudaDecoding(AVCodecContext* codec, int cudaDevice, std::string& why) {
  bool supported = false;
  for (int i = 0; const AVCodecHWConfig* config = avcodec_get_hw_config(codec->codec, i); ++i)
    supported |= config->device_type == AV_HWDEVICE_TYPE_CUDA &&
                 (config->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) && config->pix_fmt == AV_PIX_FMT_CUDA;
  if (!supported) {
    why = std::string("this FFmpeg's ") + codec->codec->name + " decoder has no CUDA (NVDEC) support";
    return false;
  }
  if (!torch::cuda::is_available()) {
    why = "LibTorch sees no CUDA device";
    return false;
  }
  AVBufferRef* device = nullptr;
  if (const int r = av_hwdevice_ctx_create(&device, AV_HWDEVICE_TYPE_CUDA, std::to_string(cudaDevice).c_str(), nullptr,
                                           kUsePrimaryContext);
      r < 0) {
    why = "cannot open the CUDA device for decoding: " + av::errorString(r);
    return false;
  }
  std::unique_ptr<AVBufferRef, BufferDeleter> owned(device);
  codec->hw_device_ctx = av_buffer_ref(device);
  codec->get_format = pickCudaFormat;
  return true;
}

std::optional<YuvPlanes> cudaFramePlanes(const AVFrame& frame, int cudaDevice) {
  if (frame.format != AV_PIX_FMT_CUDA || !frame.hw_frames_ctx) return std::nullopt;
  const auto* frames = reinterpret_cast<const AVHWFramesContext*>(frame.hw_frames_ctx->data);
  const bool tenBit = frames->sw_format == AV_PIX_FMT_P010LE;
  if (!tenBit && frames->sw_format != AV_PIX_FMT_NV12) return std::nullopt;
  const int64_t h = frame.height, w = frame.width, bytes = tenBit ? 2 : 1;
  const auto options =
      torch::TensorOptions().dtype(tenBit ? torch::kInt16 : torch::kUInt8).device(torch::kCUDA, cudaDevice);
  const torch::Tensor y = torch::from_blob(frame.data[0], {h, w}, {frame.linesize[0] / bytes, 1}, options);
  const torch::Tensor uv =
      torch::from_blob(frame.data[1], {(h + 1) / 2, (w + 1) / 2, 2}, {frame.linesize[1] / bytes, 2, 1}, options);
  if (!tenBit) return YuvPlanes{y, {}, {}, uv};
  // P010: 10 bits in the top of each 16-bit word (read as int16 they may be negative).
  return YuvPlanes{topTenBits(y), {}, {}, topTenBits(uv)};
}

void finishReadingCudaFrames() {
  if (torch::cuda::is_available()) torch::cuda::synchronize();
}

}  // namespace stylize
