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

torch::Tensor TransformerNetImpl::forward(const torch::Tensor& x, torch::Tensor* preActivation) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3, "TransformerNet expects [N, 3, H, W], got ", x.sizes());
  const int64_t h = x.size(2), w = x.size(3);
  if (h < kMinSide || w < kMinSide)
    throw Error("image " + std::to_string(w) + "x" + std::to_string(h) +
                " is too small: the transform network needs at least " + std::to_string(kMinSide) +
                " pixels on each side");
  using torch::indexing::Slice;
  if (config_.type == Architecture::kPyTorchExamples) {  // as pytorch/examples runs it: 0..255, no margin
    const torch::Tensor out = johnson(x * 255).index({Slice(), Slice(), Slice(0, h), Slice(0, w)});
    if (preActivation) *preActivation = torch::Tensor();
    return out / 255;
  }
  // Reflect by the margin (bounded by the image itself), plus whatever makes both sides multiples of 4.
  const int64_t my = std::min(kMargin, h - 1), mx = std::min(kMargin, w - 1);
  const int64_t extraY = (4 - (h + 2 * my) % 4) % 4, extraX = (4 - (w + 2 * mx) % 4) % 4;
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
  y = residuals->forward(y);
  y = torch::relu(in4(deconv1(y)));
  y = torch::relu(in5(deconv2(y)));
  return deconv3(y);
}

}  // namespace stylize
