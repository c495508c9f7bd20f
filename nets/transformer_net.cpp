#include "nets/transformer_net.h"

#include "data/error.h"

namespace F = torch::nn::functional;

namespace stylize {
std::string architectureName(Architecture architecture) {
  switch (architecture) {
    case Architecture::kCompact:
      return "compact";
    case Architecture::kPyTorchExamples:
      return "pytorch_examples";
    default:
      return "johnson";
  }
}

Architecture parseArchitecture(const std::string& name) {
  if (name == "johnson") return Architecture::kJohnson;
  if (name == "compact") return Architecture::kCompact;
  if (name == "pytorch_examples") return Architecture::kPyTorchExamples;
  throw Error("unknown architecture \"" + name + "\" (johnson, compact or pytorch_examples)");
}

namespace {
// The reflection margin of an h×w input (bounded by the image itself) and the extra rows/columns that make
// both padded sides multiples of 4.
struct Margins {
  int64_t y, x, extraY, extraX;
};
Margins marginsFor(int64_t h, int64_t w) {
  const int64_t my = std::min(TransformerNetImpl::kMargin, h - 1), mx = std::min(TransformerNetImpl::kMargin, w - 1);
  return {my, mx, (4 - (h + 2 * my) % 4) % 4, (4 - (w + 2 * mx) % 4) % 4};
}
}  // namespace

double multiplyAdds(const TransformerConfig& config, int64_t h, int64_t w) {
  const double c = static_cast<double>(config.width), blocks = static_cast<double>(config.blocks);
  double pixels = static_cast<double>(h) * static_cast<double>(w);  // input pixels the network sees
  if (config.type != Architecture::kPyTorchExamples) {
    const Margins m = marginsFor(h, w);
    pixels = static_cast<double>(h + 2 * m.y + m.extraY) * static_cast<double>(w + 2 * m.x + m.extraX);
  }
  const double full = pixels, half = pixels / 4, quarter = pixels / 16;
  // Per output pixel: kernel taps × in × out; an upsampling conv is 4 phases × 4 taps at its input's size.
  if (config.type == Architecture::kCompact)
    return 9 * 3 * c * half + 9 * c * 4 * c * quarter + blocks * 2 * 9 * 16 * c * c * quarter +
           16 * 4 * c * c * quarter + 16 * c * 3 * half;
  return 81 * 3 * c * full + 9 * c * 2 * c * half + 9 * 2 * c * 4 * c * quarter +
         blocks * 2 * 9 * 16 * c * c * quarter + 16 * 4 * c * 2 * c * quarter + 16 * 2 * c * c * half +
         81 * c * 3 * full;
}

TransformerNetImpl::TransformerNetImpl(TransformerConfig config) : config_(config) {
  const int64_t w = config.width;
  if (w < 4 || w > 256) throw Error("--width must be 4..256");
  if (config.blocks < 0 || config.blocks > 32) throw Error("--blocks must be 0..32");
  if (config.type == Architecture::kCompact) {
    compact = register_module("compact", CompactNet(w, config.blocks));
    return;
  }
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

torch::Tensor TransformerNetImpl::forward(const torch::Tensor& input, torch::Tensor* preActivation) {
  TORCH_CHECK(input.dim() == 4 && input.size(1) == 3, "TransformerNet expects [N, 3, H, W], got ", input.sizes());
  const int64_t h = input.size(2), w = input.size(3);
  if (h < kMinSide || w < kMinSide)
    throw Error("image " + std::to_string(w) + "x" + std::to_string(h) +
                " is too small: the transform network needs at least " + std::to_string(kMinSide) +
                " pixels on each side");
  const torch::Tensor x = config_.denoise > 0 ? bilateralDenoise(input, config_.denoise) : input;
  using torch::indexing::Slice;
  if (config_.type == Architecture::kPyTorchExamples) {  // as pytorch/examples runs it: 0..255, no margin
    const torch::Tensor out = johnson(x * 255).index({Slice(), Slice(), Slice(0, h), Slice(0, w)});
    if (preActivation) *preActivation = torch::Tensor();
    return out / 255;
  }
  // Reflect by the margin, plus whatever makes both sides multiples of 4.
  const auto [my, mx, extraY, extraX] = marginsFor(h, w);
  if (fused::enabled() && !preActivation && !torch::GradMode::is_enabled() && x.device().is_cpu() &&
      x.scalar_type() == torch::kFloat) {
    // The margin and the first conv's own reflection pad in one copy, then the fused layers.
    const int64_t first = compact ? 1 : 4;
    using fused::Pad;
    const auto rows = fused::compose(fused::padIndex(h, my, my + extraY, Pad::kReflect),
                                     fused::padIndex(h + 2 * my + extraY, first, first, Pad::kReflect));
    const auto cols = fused::compose(fused::padIndex(w, mx, mx + extraX, Pad::kReflect),
                                     fused::padIndex(w + 2 * mx + extraX, first, first, Pad::kReflect));
    const torch::Tensor padded = fused::gather(x, rows, cols);
    return fused::finishRgb(compact ? compact->forwardFused(padded) : johnsonFused(padded), my, mx, h, w);
  }
  torch::Tensor y = F::pad(x, F::PadFuncOptions({mx, mx + extraX, my, my + extraY}).mode(torch::kReflect));

  // Johnson's bounded output: (tanh + 1) / 2 keeps the loss network's input in [0, 1] from the first
  // iteration, so a random network does not start with an enormous style loss that drives it to black.
  const torch::Tensor pre =
      (compact ? compact(y) : johnson(y)).index({Slice(), Slice(), Slice(my, my + h), Slice(mx, mx + w)});
  if (preActivation) *preActivation = pre;
  return (torch::tanh(pre) + 1) * 0.5;
}

torch::Tensor TransformerNetImpl::johnson(torch::Tensor y) {
  y = torch::relu(in1(conv1(y)));
  y = torch::relu(in2(conv2(y)));
  y = torch::relu(in3(conv3(y)));
  if (!residuals->is_empty()) y = residuals->forward(y);  // Sequential refuses to run empty
  y = torch::relu(in4(deconv1(y)));
  y = torch::relu(in5(deconv2(y)));
  return deconv3(y);
}

fused::Activation TransformerNetImpl::johnsonFused(const torch::Tensor& padded) {
  using fused::Pad;
  const auto blocks = residuals->children();
  auto norm = [](const fused::Activation& x, const torch::nn::InstanceNorm2d& in, int64_t pad, Pad mode) {
    return fused::normalizePadded(x, in, /*relu=*/true, {}, pad, mode);
  };
  torch::Tensor y = norm({fused::convolve(conv1->conv, padded)}, in1, 1, Pad::kReflect);
  y = norm({fused::convolve(conv2->conv, y)}, in2, 1, Pad::kReflect);
  y = norm({fused::convolve(conv3->conv, y)}, in3, 1, blocks.empty() ? Pad::kReplicate : Pad::kReflect);
  for (size_t i = 0; i < blocks.size(); ++i)
    y = blocks[i]->as<ResidualBlockImpl>()->forwardFused(y, i + 1 == blocks.size() ? Pad::kReplicate : Pad::kReflect);
  y = norm(deconv1->forwardFused(y), in4, 1, Pad::kReplicate);
  y = norm(deconv2->forwardFused(y), in5, 4, Pad::kReflect);
  return fused::rowSplitConv(deconv3->conv, y);
}

}  // namespace stylize
