#include "nets/layers.h"

#include <optional>

namespace F = torch::nn::functional;

namespace stylize {

torch::nn::InstanceNorm2d instanceNorm(int64_t channels) {
  return torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(channels).affine(true));
}

ConvLayerImpl::ConvLayerImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride)
    : pad(register_module("pad", torch::nn::ReflectionPad2d(kernel / 2))),
      conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride)))) {}

torch::Tensor ConvLayerImpl::forward(const torch::Tensor& x) { return conv(pad(x)); }

torch::Tensor bilateralDenoise(const torch::Tensor& images, double rangeSigma) {
  TORCH_CHECK(images.dim() == 4 && rangeSigma > 0, "bilateralDenoise expects [N, C, H, W] and a positive sigma");
  std::optional<torch::NoGradGuard> noGrad;
  if (!images.requires_grad()) noGrad.emplace();
  const int64_t r = kDenoiseRadius, h = images.size(2), w = images.size(3);
  const torch::Tensor padded = F::pad(images, F::PadFuncOptions({r, r, r, r}).mode(torch::kReflect));
  // The centre tap weighs 1, so the weights never sum to 0 (fp16 included).
  torch::Tensor sum = images.clone(), weights = torch::ones({images.size(0), 1, h, w}, images.options());
  const double range = -0.5 / (rangeSigma * rangeSigma);
  for (int64_t dy = -r; dy <= r; ++dy)
    for (int64_t dx = -r; dx <= r; ++dx) {
      if (dx == 0 && dy == 0) continue;
      const torch::Tensor neighbour = padded.narrow(2, r + dy, h).narrow(3, r + dx, w);
      const double spatial = denoiseSpatialLogWeight(dx, dy);
      const torch::Tensor weight = ((neighbour - images).square().sum(1, true) * range + spatial).exp();
      sum = sum + weight * neighbour;
      weights = weights + weight;
    }
  return sum / weights;
}

ResidualBlockImpl::ResidualBlockImpl(int64_t channels)
    : conv1(register_module("conv1", ConvLayer(channels, channels, 3, 1))),
      conv2(register_module("conv2", ConvLayer(channels, channels, 3, 1))),
      in1(register_module("in1", instanceNorm(channels))),
      in2(register_module("in2", instanceNorm(channels))) {}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) { return x + in2(conv2(torch::relu(in1(conv1(x))))); }

torch::Tensor ResidualBlockImpl::forwardFused(const torch::Tensor& padded, fused::Pad next) {
  const torch::Tensor h =
      fused::normalizePadded({fused::convolve(conv1->conv, padded)}, in1, /*relu=*/true, {}, 1, fused::Pad::kReflect);
  return fused::normalizePadded({fused::convolve(conv2->conv, h)}, in2, /*relu=*/false, fused::interior(padded, 1), 1,
                                next);
}

UpsampleConvLayerImpl::UpsampleConvLayerImpl(int64_t in, int64_t out, int64_t kernel)
    : conv(register_module("conv", ConvLayer(in, out, kernel, 1))) {}

torch::Tensor UpsampleConvLayerImpl::forwardReference(const torch::Tensor& x) {
  return conv(
      F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
}

fused::Activation UpsampleConvLayerImpl::forwardFused(const torch::Tensor& padded) {
  return fused::runPhaseConv(padded, fused::phaseConv(conv->conv->weight, conv->conv->bias));
}

torch::Tensor UpsampleConvLayerImpl::forward(const torch::Tensor& x) {
  const torch::Tensor& w = conv->conv->weight;  // [out, in, 3, 3]
  if (w.size(2) != 3 || w.size(3) != 3) return forwardReference(x);
  // The four 2×2 phase kernels of fused::phaseConv (which says why), each over its window of the
  // replicate-padded input: differentiable, so training uses it too.
  const torch::Tensor kernels = fused::phaseConv(w, {}).weight.contiguous();  // [4·out, in, 2, 2]
  const int64_t n = x.size(2), m = x.size(3), out = w.size(0);
  const torch::Tensor padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  std::vector<torch::Tensor> rows;
  for (int64_t a = 0; a < 2; ++a) {
    std::vector<torch::Tensor> cols;
    for (int64_t b = 0; b < 2; ++b) {
      using torch::indexing::Slice;
      const torch::Tensor window = padded.index({Slice(), Slice(), Slice(a, a + n + 1), Slice(b, b + m + 1)});
      cols.push_back(
          F::conv2d(window, kernels.narrow(0, (2 * a + b) * out, out), F::Conv2dFuncOptions().bias(conv->conv->bias)));
    }
    rows.push_back(torch::stack(cols, -1));  // [N, C, n, m, 2(b)]
  }
  const torch::Tensor phases = torch::stack(rows, 3);  // [N, C, n, 2(a), m, 2(b)]
  return phases.reshape({x.size(0), out, 2 * n, 2 * m});
}

}  // namespace stylize
