#include "infer/stylizer.h"

#include <torch/torch.h>

#include "data/color.h"
#include "data/error.h"

namespace stylize {

torch::ScalarType scalarType(Precision precision) {
  return precision == Precision::kFloat16    ? torch::kFloat16
         : precision == Precision::kBFloat16 ? torch::kBFloat16
                                             : torch::kFloat32;
}

namespace {
// A flat frame (black, white, a title card's plain ground, the last frames of a fade) holds no picture for
// the network: instance norm scales its rounding noise up to full contrast, and the output is a field in an
// arbitrary colour (a black frame came out blue-grey; which colour depends on the CPU's rounding). Such
// frames keep the input instead, with a smooth ramp on the luma's standard deviation: none of the style
// below 0.005 (about one 8-bit level of noise), all of it from 0.03 up (8 levels; photos and dark night
// scenes lie far above, at 0.1-0.3). Returns [N, 1, 1, 1] weights, or an undefined tensor when every frame
// gets the full style (the output is then exactly the network's).
torch::Tensor styleWeightForContrast(const torch::Tensor& input) {
  constexpr double kFlat = 0.005, kFull = 0.03;
  // The luma as one matrix product over the pixels (one pass over the frame, not five).
  const torch::Tensor weights = torch::tensor({0.299f, 0.587f, 0.114f}, input.options()).view({1, 1, 3});
  const torch::Tensor y = torch::matmul(weights, input.flatten(2));  // [N, 1, H·W]
  const torch::Tensor deviation = y.flatten(1).std(1, /*unbiased=*/false);
  if (deviation.min().item<double>() >= kFull) return {};
  const torch::Tensor t = ((deviation - kFlat) / (kFull - kFlat)).clamp(0, 1);
  return (t * t * (3 - 2 * t)).view({-1, 1, 1, 1});
}
}  // namespace

Stylizer::Stylizer(const std::filesystem::path& model, const torch::Device& device, Precision precision)
    : name_(model.stem().string()), device_(device), precision_(precision) {
  if (precision != Precision::kFloat32 && !device.is_cuda())
    throw Error(std::string(precision == Precision::kFloat16 ? "fp16" : "bf16") +
                " needs a CUDA device (on the CPU half precision is slower than float32, or missing)");
  StyleModel loaded = loadStyleModel(model);
  net_ = loaded.net;
  info_ = std::move(loaded.info);
  net_->to(device, scalarType(precision));
  net_->eval();
}

torch::Tensor Stylizer::operator()(const torch::Tensor& images, const StylizeOptions& options) {
  if (!(options.strength >= 0 && options.strength <= 1)) throw Error("--strength must be between 0 and 1");
  c10::InferenceMode inferenceOnly;  // no autograd bookkeeping at all: ~10 % faster than NoGradGuard on CPU
  const bool single = images.dim() == 3;
  const torch::Tensor input = (single ? images.unsqueeze(0) : images).to(device_, torch::kFloat32);
  // The network needs kMinSide pixels on each side (its reflection padding); smaller pictures (thumbnails,
  // icons, a 4x2 test clip) are enlarged by a whole factor for it and the result is averaged back down.
  const int64_t h = input.size(2), w = input.size(3), minSide = TransformerNetImpl::kMinSide;
  const int64_t factor = std::min(h, w) < minSide ? (minSide + std::min(h, w) - 1) / std::min(h, w) : 1;
  namespace F = torch::nn::functional;
  const torch::Tensor netInput =
      factor == 1
          ? input
          : F::interpolate(
                input,
                F::InterpolateFuncOptions().size(std::vector<int64_t>{h * factor, w * factor}).mode(torch::kNearest));
  torch::Tensor out = net_->forward(netInput.to(scalarType(precision_))).to(torch::kFloat32);
  if (factor > 1) out = F::avg_pool2d(out, F::AvgPool2dFuncOptions(factor));
  // Johnson's and the compact network's (tanh + 1) / 2 is already in [0, 1]; imported pytorch/examples
  // models are unbounded.
  if (net_->config().type == Architecture::kPyTorchExamples) out = out.clamp(0, 1);
  if (options.preserveColors) out = transferLuminance(out, input);
  if (options.strength < 1) out = input + (out - input) * options.strength;
  if (const torch::Tensor weight = styleWeightForContrast(input); weight.defined())
    out = input + (out - input) * weight;
  return single ? out.squeeze(0) : out;
}

}  // namespace stylize
