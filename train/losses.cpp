#include "train/losses.h"

#include <torch/torch.h>

#include <sstream>

#include "data/error.h"
#include "nets/vgg.h"

namespace stylize {

std::vector<LayerWeight> parseLayerWeights(const std::string& spec, const std::string& flag) {
  std::vector<LayerWeight> out;
  std::stringstream items(spec);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    LayerWeight lw;
    const auto colon = item.find(':');
    lw.layer = item.substr(0, colon);
    if (colon != std::string::npos) {
      const std::string number = item.substr(colon + 1);
      size_t used = 0;
      try {
        lw.weight = std::stod(number, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != number.size() || !(lw.weight >= 0))
        throw Error(flag + ": \"" + item + "\" needs a non-negative number after ':'");
    }
    if (!Vgg19::isLayerName(lw.layer))
      throw Error(flag + ": unknown layer \"" + lw.layer + "\" (use relu1_1 .. relu5_4, conv*, pool*)");
    out.push_back(lw);
  }
  if (out.empty()) throw Error(flag + ": no layers given");
  return out;
}

std::string formatLayerWeights(const std::vector<LayerWeight>& layers) {
  std::ostringstream out;
  for (size_t i = 0; i < layers.size(); ++i) out << (i ? "," : "") << layers[i].layer << ":" << layers[i].weight;
  return out.str();
}

namespace {

// G = F Fᵀ · scale with a hand-written backward, dF = (dG + dGᵀ) F · scale: one matrix product instead of
// autograd's two plus an add. `channelsLast` features are viewed as [N, H·W, C] (no copy), others as
// [N, C, H·W].
struct GramFunction : torch::autograd::Function<GramFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& f, bool channelsLast,
                               double scale) {
    ctx->save_for_backward({f});
    ctx->saved_data["channels_last"] = channelsLast;
    ctx->saved_data["scale"] = scale;
    const torch::Tensor gram = channelsLast ? torch::bmm(f.transpose(1, 2), f) : torch::bmm(f, f.transpose(1, 2));
    return scale == 1.0 ? gram : gram.mul_(scale);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const torch::Tensor f = ctx->get_saved_variables()[0];
    const bool channelsLast = ctx->saved_data["channels_last"].toBool();
    const double scale = ctx->saved_data["scale"].toDouble();
    const torch::Tensor g = (grads[0] + grads[0].transpose(1, 2)) * scale;
    return {channelsLast ? torch::bmm(f, g) : torch::bmm(g, f), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor gramMatrix(const torch::Tensor& features, LossNormalization norm) {
  const int64_t n = features.size(0), c = features.size(1), positions = features.size(2) * features.size(3);
  const double scale = norm == LossNormalization::kMean ? 1.0 / static_cast<double>(positions) : 1.0;
  const bool channelsLast = features.is_contiguous(torch::MemoryFormat::ChannelsLast) && !features.is_contiguous();
  const torch::Tensor f =
      channelsLast ? features.permute({0, 2, 3, 1}).reshape({n, positions, c}) : features.reshape({n, c, positions});
  return GramFunction::apply(f, channelsLast, scale);
}

torch::Tensor contentLoss(const torch::Tensor& features, const torch::Tensor& target, LossNormalization norm) {
  if (norm == LossNormalization::kGatys) return 0.5 * (features - target).pow(2).sum() / features.size(0);
  return torch::mse_loss(features, target.expand_as(features));
}

torch::Tensor styleLoss(const torch::Tensor& gram, const torch::Tensor& targetGram, int64_t positions,
                        LossNormalization norm) {
  const torch::Tensor diff = gram - targetGram.expand_as(gram);
  if (norm == LossNormalization::kGatys) {
    const double c = static_cast<double>(gram.size(1)), m = static_cast<double>(positions);
    return diff.pow(2).sum() / (4.0 * c * c * m * m) / gram.size(0);
  }
  return diff.pow(2).mean();
}

torch::Tensor totalVariationLoss(const torch::Tensor& image) {
  using torch::indexing::Slice;
  const torch::Tensor dy = image.index({"...", Slice(1, torch::indexing::None), Slice()}) -
                           image.index({"...", Slice(torch::indexing::None, -1), Slice()});
  const torch::Tensor dx = image.index({"...", Slice(), Slice(1, torch::indexing::None)}) -
                           image.index({"...", Slice(), Slice(torch::indexing::None, -1)});
  return dy.pow(2).mean() + dx.pow(2).mean();
}

}  // namespace stylize
