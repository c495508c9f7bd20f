#include "train/gatys.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/error.h"
#include "data/image.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

const Vgg19& sharedLossNetwork() {
  static const Vgg19 vgg = [] {
    test::TempDir cache;
    return loadNormalizedVgg19(test::sharedVgg(), cache.path(), [] {
      std::vector<torch::Tensor> photos;
      for (const auto& e : std::filesystem::directory_iterator(test::sourceDir() / "samples" / "calibration"))
        if (e.path().extension() == ".jpg") photos.push_back(loadImage(e.path()));
      return photos;
    });
  }();
  return vgg;
}

torch::Tensor contentPhoto() {
  return resizeLongSide(
      loadImage(test::sharedDir() / "data/reference/extra_content_jcjohnson_neural-style/tubingen.jpg"), 64);
}
torch::Tensor stylePainting() {
  return resizeLongSide(loadImage(test::sharedDir() / "data/styles/jcjohnson_fast-neural-style/starry_night.jpg"), 64);
}

class GatysTest : public ::testing::TestWithParam<GatysOptimizer> {};

TEST_P(GatysTest, OptimizationLowersTheLossOnARealImage) {
  STYLIZE_REQUIRE_SHARED(test::sharedVgg());
  const Vgg19& vgg = sharedLossNetwork();
  PerceptualLoss loss(vgg, defaultLossConfig(vgg));
  loss.setStyle({stylePainting()}, {1.0});
  const torch::Tensor content = contentPhoto();
  GatysOptions options;
  options.optimizer = GetParam();
  options.iterations = 30;
  const double initial = loss(content.unsqueeze(0), loss.contentTargets(content.unsqueeze(0))).total.item<double>();
  std::vector<double> totals;
  const torch::Tensor out = optimizeImage(loss, content, stylePainting(), options,
                                          [&](const GatysProgress& p) { totals.push_back(p.loss.total); });
  ASSERT_GE(totals.size(), 3u);
  EXPECT_LT(totals.back(), 0.5 * initial) << "started at " << initial;
  EXPECT_LE(totals.back(), totals[totals.size() / 2]);
  EXPECT_EQ(out.sizes(), content.sizes());
  EXPECT_GE(out.min().item<float>(), 0.0f);
  EXPECT_LE(out.max().item<float>(), 1.0f);
  EXPECT_GT((out - content).abs().mean().item<float>(), 0.01f);  // it moved towards the style
}

INSTANTIATE_TEST_SUITE_P(Optimizers, GatysTest, ::testing::Values(GatysOptimizer::kLbfgs, GatysOptimizer::kAdam),
                         [](const auto& info) { return info.param == GatysOptimizer::kLbfgs ? "Lbfgs" : "Adam"; });

TEST(PerceptualLoss, StyleLossOfTheStyleImageItselfIsZero) {
  STYLIZE_REQUIRE_SHARED(test::sharedVgg());
  const Vgg19& vgg = sharedLossNetwork();
  LossConfig config = defaultLossConfig(vgg);
  PerceptualLoss loss(vgg, config);
  const torch::Tensor style = stylePainting();
  loss.setStyle({style}, {1.0});
  const LossTerms terms = loss(style.unsqueeze(0), loss.contentTargets(style.unsqueeze(0)));
  EXPECT_LT(terms.style.item<float>(), 1e-4);
  EXPECT_LT(terms.content.item<float>(), 1e-6);
  // Blending a style with itself changes nothing.
  loss.setStyle({style, style}, {0.3, 0.7});
  EXPECT_LT(loss(style.unsqueeze(0), loss.contentTargets(style.unsqueeze(0))).style.item<float>(), 1e-4);
}

// eval loss --per-layer: the cells add up to the style term (the mean over levels of the sum over layers).
TEST(PerceptualLoss, StyleBreakdownAddsUpToTheStyleTerm) {
  STYLIZE_REQUIRE_SHARED(test::sharedVgg());
  const Vgg19& vgg = sharedLossNetwork();
  LossConfig config = defaultLossConfig(vgg);
  config.styleLayers = {{"relu1_1", 0.5}, {"relu2_1", 1.0}, {"relu3_1", 2.0}};
  PerceptualLoss loss(vgg, config);
  const torch::Tensor style = stylePainting(), content = contentPhoto();
  loss.setStyle({style}, {1.0});
  const torch::Tensor image = content.unsqueeze(0);
  const std::vector<StyleCell> cells = loss.styleBreakdown(image);
  ASSERT_EQ(cells.size(), 9u);
  EXPECT_EQ(cells[0].layer, "relu1_1");
  EXPECT_EQ(cells[0].level, 0);
  EXPECT_EQ(cells[8].layer, "relu3_1");
  EXPECT_EQ(cells[8].level, 2);
  double sum = 0;
  for (const StyleCell& c : cells) sum += c.value;
  const double style_term = loss(image, loss.contentTargets(image)).style.item<double>();
  EXPECT_NEAR(sum / config.pyramidLevels, style_term, 1e-4 * style_term);
}

TEST(PerceptualLoss, MissingLayerIsAClearError) {
  STYLIZE_REQUIRE_SHARED(test::sharedVgg());
  LossConfig config = defaultLossConfig(sharedLossNetwork());
  config.contentLayers = {{"relu4_2", 1.0}};
  try {
    PerceptualLoss loss(sharedLossNetwork(), config);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("relu4_2 needs conv4_2"), std::string::npos) << e.what();
  }
}

TEST(PerceptualLoss, DefaultsFollowTheAvailableLayers) {
  STYLIZE_REQUIRE_SHARED(test::sharedVgg());
  const LossConfig partial = defaultLossConfig(sharedLossNetwork());
  EXPECT_EQ(partial.contentLayers.front().layer, "relu3_1");
  EXPECT_EQ(partial.styleLayers.back().layer, "relu3_1");
  EXPECT_GT(partial.pyramidLevels, 1);
}

}  // namespace
}  // namespace stylize
