#include "train/perceptual_loss.h"

#include <torch/torch.h>

#include "data/error.h"

namespace F = torch::nn::functional;

namespace stylize {
namespace {

std::vector<std::string> layerNames(const std::vector<LayerWeight>& layers) {
  std::vector<std::string> out;
  for (const auto& l : layers) out.push_back(l.layer);
  return out;
}

torch::Tensor downscale(const torch::Tensor& image, int level) {
  if (level == 0) return image;
  const int64_t k = int64_t{1} << level;
  return F::avg_pool2d(image, F::AvgPool2dFuncOptions(k).stride(k));
}

}  // namespace

LossValues LossValues::of(const LossTerms& terms) {
  return {terms.content.item<double>(), terms.style.item<double>(), terms.tv.item<double>(), terms.total.item<double>(),
          terms.temporal.defined() ? terms.temporal.item<double>() : 0.0};
}

LossConfig defaultLossConfig(const Vgg19& vgg) {
  LossConfig config;
  if (vgg.hasLayer("relu5_1")) {
    config.contentLayers = {{"relu4_2", 1.0}};
    config.styleLayers = {{"relu1_1", 1.0}, {"relu2_1", 1.0}, {"relu3_1", 1.0}, {"relu4_1", 1.0}, {"relu5_1", 1.0}};
    config.pyramidLevels = 1;
  } else {
    config.contentLayers = {{"relu3_1", 1.0}};
    config.styleLayers = {{"relu1_1", 1.0}, {"relu2_1", 1.0}, {"relu3_1", 1.0}};
    config.pyramidLevels = 3;
  }
  config.contentWeight = 1.0;
  config.styleWeight = 10.0;
  config.tvWeight = 1.0;
  return config;
}

PerceptualLoss::PerceptualLoss(const Vgg19& vgg, LossConfig config) : vgg_(vgg), config_(std::move(config)) {
  if (config_.pyramidLevels < 1 || config_.pyramidLevels > 6) throw Error("--pyramid: levels must be 1..6");
  contentTaps_ = layerNames(config_.contentLayers);
  styleTaps_ = layerNames(config_.styleLayers);
  vgg_.requireLayers(contentTaps_);
  vgg_.requireLayers(styleTaps_);
  allTaps_ = contentTaps_;
  for (const auto& t : styleTaps_)
    if (std::find(allTaps_.begin(), allTaps_.end(), t) == allTaps_.end()) allTaps_.push_back(t);
}

void PerceptualLoss::setStyle(const std::vector<torch::Tensor>& styles, const std::vector<double>& blend) {
  TORCH_CHECK(!styles.empty() && styles.size() == blend.size(), "setStyle: one blend weight per style image");
  double total = 0;
  for (double b : blend) total += b;
  if (!(total > 0)) throw Error("--style-blend: weights must add up to more than 0");
  torch::NoGradGuard noGrad;
  styleGrams_.assign(config_.pyramidLevels, {});
  for (size_t s = 0; s < styles.size(); ++s) {
    const torch::Tensor image = styles[s].unsqueeze(0).to(vgg_.device());
    for (int level = 0; level < config_.pyramidLevels; ++level) {
      const Features features = vgg_.forward(downscale(image, level), styleTaps_);
      for (const auto& tap : styleTaps_) {
        torch::Tensor g = gramMatrix(features.at(tap), config_.normalization) * (blend[s] / total);
        auto& target = styleGrams_[level][tap];
        target = target.defined() ? target + g : g;
      }
    }
  }
}

Features PerceptualLoss::contentTargets(const torch::Tensor& content) const {
  torch::NoGradGuard noGrad;
  return vgg_.forward(content.to(vgg_.device()), contentTaps_);
}

LossTerms PerceptualLoss::operator()(const torch::Tensor& output, const Features& targets) const {
  TORCH_CHECK(hasStyle(), "PerceptualLoss: setStyle() first");
  const auto& norm = config_.normalization;
  LossTerms terms;
  Features features = vgg_.forward(output, allTaps_);

  terms.content = torch::zeros({}, output.options());
  for (const auto& l : config_.contentLayers)
    terms.content = terms.content + l.weight * contentLoss(features.at(l.layer), targets.at(l.layer), norm);

  terms.style = torch::zeros({}, output.options());
  for (int level = 0; level < config_.pyramidLevels; ++level) {
    if (level > 0) features = vgg_.forward(downscale(output, level), styleTaps_);
    terms.style = terms.style + styleAtLevel(features, level, nullptr);
  }
  terms.style = terms.style / config_.pyramidLevels;

  terms.content = terms.content * config_.contentWeight;
  terms.style = terms.style * config_.styleWeight;
  terms.tv = totalVariationLoss(output) * config_.tvWeight;
  terms.total = terms.content + terms.style + terms.tv;
  return terms;
}

torch::Tensor PerceptualLoss::styleAtLevel(const Features& features, int level, std::vector<StyleCell>* cells) const {
  torch::Tensor sum = torch::zeros({}, features.empty() ? torch::TensorOptions() : features.begin()->second.options());
  for (const auto& l : config_.styleLayers) {
    const torch::Tensor& f = features.at(l.layer);
    const torch::Tensor part =
        l.weight * styleLoss(gramMatrix(f, config_.normalization), styleGrams_[level].at(l.layer),
                             f.size(2) * f.size(3), config_.normalization);
    if (cells) cells->push_back({level, l.layer, part.item<double>() * config_.styleWeight});
    sum = sum + part;
  }
  return sum;
}

std::vector<StyleCell> PerceptualLoss::styleBreakdown(const torch::Tensor& output) const {
  TORCH_CHECK(hasStyle(), "PerceptualLoss: setStyle() first");
  torch::NoGradGuard noGrad;
  std::vector<StyleCell> cells;
  for (int level = 0; level < config_.pyramidLevels; ++level)
    styleAtLevel(vgg_.forward(downscale(output, level), styleTaps_), level, &cells);
  return cells;
}

}  // namespace stylize
