#include "nets/layers.h"

namespace F = torch::nn::functional;

namespace stylize {

torch::nn::InstanceNorm2d instanceNorm(int64_t channels) {
  return torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(channels).affine(true));
}

ConvLayerImpl::ConvLayerImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride)
    : pad(register_module("pad", torch::nn::ReflectionPad2d(kernel / 2))),
      conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride)))) {}

torch::Tensor ConvLayerImpl::forward(const torch::Tensor& x) { return conv(pad(x)); }

ResidualBlockImpl::ResidualBlockImpl(int64_t channels)
    : conv1(register_module("conv1", ConvLayer(channels, channels, 3, 1))),
      conv2(register_module("conv2", ConvLayer(channels, channels, 3, 1))),
      in1(register_module("in1", instanceNorm(channels))),
      in2(register_module("in2", instanceNorm(channels))) {}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) { return x + in2(conv2(torch::relu(in1(conv1(x))))); }

torch::Tensor ResidualBlockImpl::forwardFused(const torch::Tensor& padded, fused::Pad next) {
  const torch::Tensor h =
      fused::normalizePadded({fused::convolve(conv1->conv, padded)}, in1->weight, in1->bias, in1->options.eps(),
                             /*relu=*/true, {}, 1, fused::Pad::kReflect);
  return fused::normalizePadded({fused::convolve(conv2->conv, h)}, in2->weight, in2->bias, in2->options.eps(),
                                /*relu=*/false, fused::interior(padded, 1), 1, next);
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
  // Output row 2i sees input rows (i−1, i, i) through taps (w0, w1, w2); row 2i+1 sees (i, i, i+1). So
  // phase 0 is the 2-tap kernel (w0, w1+w2) over rows (i−1, i), phase 1 is (w0+w1, w2) over (i, i+1).
  // Reflection padding of the upsampled image equals replicate padding of the input.
  const torch::Tensor combine =
      torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 1.f}, w.options()).view({2, 2, 3});
  const int64_t n = x.size(2), m = x.size(3);
  const torch::Tensor padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  std::vector<torch::Tensor> rows;
  for (int64_t a = 0; a < 2; ++a) {
    std::vector<torch::Tensor> cols;
    for (int64_t b = 0; b < 2; ++b) {
      // K_ab[o, c] = R_a · W[o, c] · C_bᵀ  (2×3 · 3×3 · 3×2)
      const torch::Tensor kernel = torch::einsum("rk,ocks,ts->ocrt", {combine[a], w, combine[b]});
      using torch::indexing::Slice;
      const torch::Tensor window = padded.index({Slice(), Slice(), Slice(a, a + n + 1), Slice(b, b + m + 1)});
      cols.push_back(F::conv2d(window, kernel, F::Conv2dFuncOptions().bias(conv->conv->bias)));
    }
    rows.push_back(torch::stack(cols, -1));  // [N, C, n, m, 2(b)]
  }
  const torch::Tensor phases = torch::stack(rows, 3);  // [N, C, n, 2(a), m, 2(b)]
  return phases.reshape({x.size(0), w.size(0), 2 * n, 2 * m});
}

}  // namespace stylize
