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
  out = out.clamp(0, 1);
  if (options.preserveColors) out = transferLuminance(out, input);
  if (options.strength < 1) out = input + (out - input) * options.strength;
  return single ? out.squeeze(0) : out;
}

}  // namespace stylize
