// Content + style + total-variation loss through a VGG19 loss network: the objective of both the Gatys
// optimizer and the feed-forward trainer.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "nets/vgg.h"
#include "train/losses.h"

namespace stylize {

struct LossConfig {
  std::vector<LayerWeight> contentLayers;
  std::vector<LayerWeight> styleLayers;
  double contentWeight = 1.0;
  double styleWeight = 1.0;
  double tvWeight = 0.0;
  // Style loss also on the output and style downscaled by 2, 4, ... (levels − 1 extra copies): the
  // shallow layers' small receptive fields then see large-scale structure too.
  int pyramidLevels = 1;
  LossNormalization normalization = LossNormalization::kMean;
};

// The defaults for the layers a weights file has: with the full VGG19, Gatys' relu4_2 content and
// relu1_1..relu5_1 style; with conv1_1..conv3_4 only, relu3_1 content, relu1_1..relu3_1 style and a
// 3-level pyramid. Weights suit the normalised network (mean activation 1).
LossConfig defaultLossConfig(const Vgg19& vgg);

struct LossTerms {
  torch::Tensor content, style, tv, total;  // weighted, scalar
  torch::Tensor temporal;                   // training with --temporal-weight only (weighted; else undefined)
};

// The same terms read back to the host, for progress reports and logs.
struct LossValues {
  double content = 0, style = 0, tv = 0, total = 0, temporal = 0;
  static LossValues of(const LossTerms& terms);
  LossValues& operator+=(const LossValues& o) {
    content += o.content, style += o.style, tv += o.tv, total += o.total, temporal += o.temporal;
    return *this;
  }
  LossValues operator/(double n) const { return {content / n, style / n, tv / n, total / n, temporal / n}; }
};

using Features = std::map<std::string, torch::Tensor>;

// One cell of the style term split by pyramid level and layer: styleWeight × the layer's weight × its Gram
// loss on the output downscaled by 2^level. The style term is the mean over levels of the sum over layers.
// The deepest layer at the coarser levels tracks the painting's structure (strokes, swirls, crests); the
// shallow layers mostly its palette.
struct StyleCell {
  int level = 0;
  std::string layer;
  double value = 0;
};

class PerceptualLoss {
 public:
  // Throws Error naming the weights file when a configured layer is missing from `vgg`.
  PerceptualLoss(const Vgg19& vgg, LossConfig config);

  const LossConfig& config() const { return config_; }
  const Vgg19& vgg() const { return vgg_; }

  // Target Grams: the `blend`-weighted mean of each style image's Gram ([3, H, W] images, any sizes).
  void setStyle(const std::vector<torch::Tensor>& styles, const std::vector<double>& blend);
  bool hasStyle() const { return !styleGrams_.empty(); }

  // Content-layer features of [N, 3, H, W] images, without gradient: the content targets.
  Features contentTargets(const torch::Tensor& content) const;

  // output [N, 3, H, W] in [0, 1] (any device the VGG is on); targets from contentTargets.
  LossTerms operator()(const torch::Tensor& output, const Features& targets) const;

  // The style term of `output` cell by cell (levels outer, layers in config order), without gradient.
  std::vector<StyleCell> styleBreakdown(const torch::Tensor& output) const;

 private:
  // Σ over layers of weight × Gram loss at one pyramid level, from that level's features (unweighted by
  // styleWeight); `cells` gets each layer's part when given.
  torch::Tensor styleAtLevel(const Features& features, int level, std::vector<StyleCell>* cells) const;

  const Vgg19& vgg_;
  LossConfig config_;
  std::vector<std::string> contentTaps_, styleTaps_, allTaps_;
  std::vector<Features> styleGrams_;  // per pyramid level: layer → [1, C, C]
};

}  // namespace stylize
