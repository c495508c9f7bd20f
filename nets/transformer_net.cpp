#include "nets/transformer_net.h"

#include "data/error.h"

namespace F = torch::nn::functional;

namespace stylize {
namespace {

torch::nn::InstanceNorm2d instanceNorm(int64_t channels) {
  return torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(channels).affine(true));
}

// Reflection margin around the input: the network's border pixels then see image content, not padding.
constexpr int64_t kMargin = 8;

}  // namespace

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

UpsampleConvLayerImpl::UpsampleConvLayerImpl(int64_t in, int64_t out, int64_t kernel)
    : conv(register_module("conv", ConvLayer(in, out, kernel, 1))) {}

torch::Tensor UpsampleConvLayerImpl::forwardReference(const torch::Tensor& x) {
  return conv(
      F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
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

TransformerNetImpl::TransformerNetImpl(TransformerConfig config) : config_(config) {
  const int64_t w = config.width;
  if (w < 4 || w > 256) throw Error("--width must be 4..256");
  if (config.blocks < 0 || config.blocks > 32) throw Error("--blocks must be 0..32");
  conv1 = register_module("conv1", ConvLayer(3, w, 9, 1));
  in1 = register_module("in1", instanceNorm(w));
  conv2 = register_module("conv2", ConvLayer(w, 2 * w, 3, 2));
  in2 = register_module("in2", instanceNorm(2 * w));
  conv3 = register_module("conv3", ConvLayer(2 * w, 4 * w, 3, 2));
  in3 = register_module("in3", instanceNorm(4 * w));
  residuals = torch::nn::Sequential();
  for (int64_t i = 0; i < config.blocks; ++i) residuals->push_back(ResidualBlock(4 * w));
  residuals = register_module("residuals", residuals);
  deconv1 = register_module("deconv1", UpsampleConvLayer(4 * w, 2 * w, 3));
  in4 = register_module("in4", instanceNorm(2 * w));
  deconv2 = register_module("deconv2", UpsampleConvLayer(2 * w, w, 3));
  in5 = register_module("in5", instanceNorm(w));
  deconv3 = register_module("deconv3", ConvLayer(w, 3, 9, 1));
}

torch::Tensor TransformerNetImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "TransformerNet expects [N, 3, H, W], got ", x.sizes());
  const int64_t h = x.size(2), w = x.size(3);
  if (h < kMinSide || w < kMinSide)
    throw Error("image " + std::to_string(w) + "x" + std::to_string(h) +
                " is too small: the transform network needs at least " + std::to_string(kMinSide) +
                " pixels on each side");
  // Reflect by the margin (bounded by the image itself), plus whatever makes both sides multiples of 4.
  const int64_t my = std::min(kMargin, h - 1), mx = std::min(kMargin, w - 1);
  const int64_t extraY = (4 - (h + 2 * my) % 4) % 4, extraX = (4 - (w + 2 * mx) % 4) % 4;
  torch::Tensor y = F::pad(x, F::PadFuncOptions({mx, mx + extraX, my, my + extraY}).mode(torch::kReflect));

  y = torch::relu(in1(conv1(y)));
  y = torch::relu(in2(conv2(y)));
  y = torch::relu(in3(conv3(y)));
  y = residuals->forward(y);
  y = torch::relu(in4(deconv1(y)));
  y = torch::relu(in5(deconv2(y)));
  // Johnson's bounded output: (tanh + 1) / 2 keeps the loss network's input in [0, 1] from the first
  // iteration, so a random network does not start with an enormous style loss that drives it to black.
  y = (torch::tanh(deconv3(y)) + 1) * 0.5;
  using torch::indexing::Slice;
  return y.index({Slice(), Slice(), Slice(my, my + h), Slice(mx, mx + w)});
}

}  // namespace stylize
