#include "train/losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/error.h"

namespace stylize {
namespace {

// Central finite differences of a scalar function of x, in float64, at a few random coordinates.
void expectGradientMatchesFiniteDifferences(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                            torch::Tensor x) {
  x = x.to(torch::kFloat64).detach().requires_grad_(true);
  f(x).backward();
  const torch::Tensor analytic = x.grad().clone();
  const torch::Tensor flat = x.detach().clone().reshape({-1});
  constexpr double eps = 1e-6;
  for (int64_t i : {int64_t{0}, flat.numel() / 3, flat.numel() / 2, flat.numel() - 1}) {
    torch::Tensor plus = flat.clone(), minus = flat.clone();
    plus[i] += eps;
    minus[i] -= eps;
    const double numeric =
        (f(plus.view(x.sizes())).item<double>() - f(minus.view(x.sizes())).item<double>()) / (2 * eps);
    EXPECT_NEAR(analytic.reshape({-1})[i].item<double>(), numeric, 1e-6 + 1e-5 * std::abs(numeric))
        << "coordinate " << i;
  }
}

TEST(GramMatrix, MatchesHandComputedValues) {
  // Two channels over four positions: f0 = [1 2 3 4], f1 = [0 1 0 -1].
  const torch::Tensor f = torch::tensor({1.f, 2.f, 3.f, 4.f, 0.f, 1.f, 0.f, -1.f}).view({1, 2, 2, 2});
  const torch::Tensor sum = gramMatrix(f, LossNormalization::kGatys);
  EXPECT_TRUE(torch::equal(sum, torch::tensor({30.f, -2.f, -2.f, 2.f}).view({1, 2, 2})));
  EXPECT_TRUE(torch::allclose(gramMatrix(f), sum / 4));
}

TEST(GramMatrix, ChannelsLastGivesTheSameValuesAndGradients) {
  const torch::Tensor f = torch::randn({2, 5, 6, 7});
  const torch::Tensor cl = f.contiguous(torch::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(torch::allclose(gramMatrix(f), gramMatrix(cl), 1e-5, 1e-6));
  const torch::Tensor weights = torch::randn({2, 5, 5});
  for (const torch::Tensor& input : {f, cl}) {
    expectGradientMatchesFiniteDifferences(
        [&](const torch::Tensor& x) { return (gramMatrix(x) * weights.to(x.dtype())).sum(); }, input);
  }
}

TEST(Losses, GradientsMatchFiniteDifferences) {
  torch::manual_seed(3);
  const torch::Tensor target = torch::randn({1, 4, 5, 6}, torch::kFloat64);
  const torch::Tensor gram = gramMatrix(torch::randn({1, 4, 5, 6}, torch::kFloat64));
  for (auto norm : {LossNormalization::kMean, LossNormalization::kGatys}) {
    expectGradientMatchesFiniteDifferences([&](const torch::Tensor& x) { return contentLoss(x, target, norm); },
                                           torch::randn({1, 4, 5, 6}));
    expectGradientMatchesFiniteDifferences(
        [&](const torch::Tensor& x) {
          const torch::Tensor t = norm == LossNormalization::kGatys ? gram * 30 : gram;
          return styleLoss(gramMatrix(x, norm), t, 30, norm);
        },
        torch::randn({1, 4, 5, 6}));
  }
  expectGradientMatchesFiniteDifferences([](const torch::Tensor& x) { return totalVariationLoss(x); },
                                         torch::rand({1, 3, 7, 5}));
}

TEST(Losses, GatysFormulasAreExpressible) {
  const torch::Tensor f = torch::randn({1, 3, 4, 5}, torch::kFloat64);
  const torch::Tensor p = torch::randn({1, 3, 4, 5}, torch::kFloat64);
  // L_content = ½ Σ (F − P)²
  EXPECT_NEAR(contentLoss(f, p, LossNormalization::kGatys).item<double>(), 0.5 * (f - p).pow(2).sum().item<double>(),
              1e-9);
  // E_l = 1/(4 N² M²) Σ (G − A)², G = F Fᵀ, N = 3 channels, M = 20 positions
  const torch::Tensor g = gramMatrix(f, LossNormalization::kGatys), a = gramMatrix(p, LossNormalization::kGatys);
  EXPECT_NEAR(styleLoss(g, a, 20, LossNormalization::kGatys).item<double>(),
              (g - a).pow(2).sum().item<double>() / (4.0 * 9 * 400), 1e-9);
}

TEST(Losses, MeanNormalizationDoesNotDependOnImageSize) {
  // A constant-statistics texture at two sizes: the style loss against the same target is the same.
  torch::manual_seed(5);
  const torch::Tensor pattern = torch::rand({1, 8, 4, 4});
  const torch::Tensor small = pattern.repeat({1, 1, 4, 4}), large = pattern.repeat({1, 1, 16, 16});
  const torch::Tensor target = gramMatrix(torch::rand({1, 8, 10, 10}));
  EXPECT_NEAR(styleLoss(gramMatrix(small), target, 256).item<float>(),
              styleLoss(gramMatrix(large), target, 4096).item<float>(), 1e-5);
  EXPECT_NEAR(contentLoss(small, small * 2).item<float>(), contentLoss(large, large * 2).item<float>(), 1e-5);
}

TEST(Losses, TotalVariationIsZeroOnlyForFlatImages) {
  EXPECT_EQ(totalVariationLoss(torch::full({1, 3, 8, 8}, 0.3)).item<float>(), 0.0f);
  EXPECT_GT(totalVariationLoss(torch::rand({1, 3, 8, 8})).item<float>(), 0.0f);
}

TEST(LayerWeights, ParsesAndRejects) {
  const auto layers = parseLayerWeights("relu1_1:1,relu2_1:0.5,relu3_1", "--style-layers");
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[1].layer, "relu2_1");
  EXPECT_DOUBLE_EQ(layers[1].weight, 0.5);
  EXPECT_DOUBLE_EQ(layers[2].weight, 1.0);
  EXPECT_EQ(formatLayerWeights(layers), "relu1_1:1,relu2_1:0.5,relu3_1:1");
  EXPECT_THROW(parseLayerWeights("relu1_1:x", "--style-layers"), Error);
  EXPECT_THROW(parseLayerWeights("relu1_1:-1", "--style-layers"), Error);
  EXPECT_THROW(parseLayerWeights("relu6_1", "--style-layers"), Error);
  EXPECT_THROW(parseLayerWeights("", "--style-layers"), Error);
}

}  // namespace
}  // namespace stylize
