#include "infer/yuv.h"

#include <torch/torch.h>

#include "data/error.h"

namespace stylize {
namespace {

struct LumaWeights {
  double kr, kb;
  double kg() const { return 1 - kr - kb; }
};

LumaWeights weightsOf(YuvFormat::Matrix matrix) {
  switch (matrix) {
    case YuvFormat::Matrix::kBt601:
      return {0.299, 0.114};
    case YuvFormat::Matrix::kBt2020:
      return {0.2627, 0.0593};
    case YuvFormat::Matrix::kBt709:
      break;
  }
  return {0.2126, 0.0722};
}

// Code values of black, white and zero chroma, and the chroma span, at the format's bit depth.
struct Levels {
  double yBlack, ySpan, cZero, cSpan, max;
};

Levels levelsOf(const YuvFormat& format) {
  if (format.bits != 8 && format.bits != 10)
    throw Error("YUV conversion: 8 or 10 bits, not " + std::to_string(format.bits));
  const double scale = 1 << (format.bits - 8), max = (1 << format.bits) - 1;
  if (format.fullRange) return {0, max, 128 * scale, max, max};
  return {16 * scale, 219 * scale, 128 * scale, 224 * scale, max};
}

// [h, w] chroma → [H, W]: each sample repeated over its 2×2 block, cropped to the luma size.
torch::Tensor upsampleChroma(const torch::Tensor& c, int64_t height, int64_t width) {
  return c.repeat_interleave(2, 0).repeat_interleave(2, 1).narrow(0, 0, height).narrow(1, 0, width);
}

}  // namespace

torch::Tensor topTenBits(const torch::Tensor& words) {
  return words.to(torch::kInt32).bitwise_and(0xFFFF).div(64, "floor").to(torch::kInt16);
}

torch::Tensor yuvToRgb(const YuvPlanes& planes, const YuvFormat& format) {
  const LumaWeights k = weightsOf(format.matrix);
  const Levels l = levelsOf(format);
  const int64_t height = planes.y.size(0), width = planes.y.size(1);
  const torch::Tensor u = planes.uv.defined() ? planes.uv.select(2, 0) : planes.u;
  const torch::Tensor v = planes.uv.defined() ? planes.uv.select(2, 1) : planes.v;
  const torch::Tensor y = (planes.y.to(torch::kFloat32) - l.yBlack) / l.ySpan;
  const torch::Tensor cb = (upsampleChroma(u, height, width).to(torch::kFloat32) - l.cZero) / l.cSpan;
  const torch::Tensor cr = (upsampleChroma(v, height, width).to(torch::kFloat32) - l.cZero) / l.cSpan;
  const torch::Tensor r = y + 2 * (1 - k.kr) * cr;
  const torch::Tensor b = y + 2 * (1 - k.kb) * cb;
  const torch::Tensor g = y - (2 * k.kr * (1 - k.kr) / k.kg()) * cr - (2 * k.kb * (1 - k.kb) / k.kg()) * cb;
  return torch::stack({r, g, b}).clamp_(0, 1);
}

YuvPlanes rgbToYuv(const torch::Tensor& rgb, const YuvFormat& format) {
  namespace F = torch::nn::functional;
  const LumaWeights k = weightsOf(format.matrix);
  const Levels l = levelsOf(format);
  const torch::Tensor x = rgb.to(torch::kFloat32);
  const torch::Tensor r = x[0], g = x[1], b = x[2];
  const torch::Tensor y = k.kr * r + k.kg() * g + k.kb * b;
  // Chroma at full resolution, then the mean of each 2×2 block (an odd side's last block is half of one,
  // replicated to full).
  torch::Tensor chroma = torch::stack({(b - y) / (2 * (1 - k.kb)), (r - y) / (2 * (1 - k.kr))}).unsqueeze(0);
  const int64_t padY = x.size(1) % 2, padX = x.size(2) % 2;
  if (padY || padX) chroma = F::pad(chroma, F::PadFuncOptions({0, padX, 0, padY}).mode(torch::kReplicate));
  chroma = F::avg_pool2d(chroma, F::AvgPool2dFuncOptions(2)).squeeze(0);
  const auto quantise = [&](const torch::Tensor& t, double offset, double span) {
    return (t * span + offset).round_().clamp_(0, l.max).to(format.bits == 8 ? torch::kUInt8 : torch::kInt16);
  };
  YuvPlanes planes;
  planes.y = quantise(y, l.yBlack, l.ySpan);
  planes.u = quantise(chroma[0], l.cZero, l.cSpan);
  planes.v = quantise(chroma[1], l.cZero, l.cSpan);
  return planes;
}

}  // namespace stylize
