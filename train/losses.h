// The perceptual losses of Gatys et al. (2016) and Johnson et al. (2016), on VGG19 features.
//
// Normalisation (LossNormalization::kMean, the default) makes every term independent of image size:
//   content  = Σ_l w_l · mean((F_l − P_l)²)                            (mean over C·H·W)
//   Gram     = G_l = F_l F_lᵀ / (H·W)                                   (C×C, per image)
//   style    = Σ_l w_l · mean((G_l − A_l)²)                            (mean over C²)
//   tv       = mean((x[i+1,j] − x[i,j])²) + mean((x[i,j+1] − x[i,j])²)
// LossNormalization::kGatys gives the paper's formulas instead: content = ½ Σ (F − P)², Gram = F Fᵀ, and
// E_l = 1/(4 N_l² M_l²) Σ (G_l − A_l)² with N_l channels and M_l = H·W positions.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace stylize {

enum class LossNormalization { kMean, kGatys };

struct LayerWeight {
  std::string layer;  // a VGG19 tap, e.g. relu2_1
  double weight = 1.0;
};

// "relu1_1:1,relu2_1:0.5,relu3_1" (a missing weight means 1). Throws Error mentioning `flag` on bad syntax
// or an unknown layer name.
std::vector<LayerWeight> parseLayerWeights(const std::string& spec, const std::string& flag);
std::string formatLayerWeights(const std::vector<LayerWeight>& layers);

// features [N, C, H, W] → [N, C, C].
torch::Tensor gramMatrix(const torch::Tensor& features, LossNormalization norm = LossNormalization::kMean);

// Per-item losses for a batch are averaged over the batch (the first dimension).
torch::Tensor contentLoss(const torch::Tensor& features, const torch::Tensor& target,
                          LossNormalization norm = LossNormalization::kMean);
// `gram` from gramMatrix of the output; `targetGram` [C, C] or [N, C, C]; `positions` = H·W of the layer
// (only used by kGatys, whose Gram is unnormalised).
torch::Tensor styleLoss(const torch::Tensor& gram, const torch::Tensor& targetGram, int64_t positions,
                        LossNormalization norm = LossNormalization::kMean);
torch::Tensor totalVariationLoss(const torch::Tensor& image);

}  // namespace stylize
