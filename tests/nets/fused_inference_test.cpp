#include "nets/fused_inference.h"

#include <gtest/gtest.h>

#include "data/image.h"
#include "nets/style_model.h"
#include "nets/transformer_net.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

namespace F = torch::nn::functional;

// The layer-by-layer forward, for comparison.
torch::Tensor reference(TransformerNet& net, const torch::Tensor& x) {
  fused::setEnabled(false);
  torch::Tensor y = net->forward(x);
  fused::setEnabled(true);
  return y;
}

double maxDifference(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Random weights with trained-like statistics: instance norm scales and shifts away from 1 and 0, so that a
// mistake in either shows.
void randomize(TransformerNet& net) {
  torch::NoGradGuard noGrad;
  for (auto& item : net->named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (name.find("in") != std::string::npos && p.dim() == 1)
      p.copy_(torch::randn_like(p) * 0.5 + 0.8);
    else
      p.copy_(torch::randn_like(p) * (p.dim() == 1 ? 0.3 : 0.2));
  }
}

TEST(FusedInference, EqualsTheLayerByLayerForwardForEveryShape) {
  torch::manual_seed(3);
  double worst = 0;
  for (const TransformerConfig config :
       {TransformerConfig{8, 2}, TransformerConfig{8, 0}, TransformerConfig{8, 3, Architecture::kCompact},
        TransformerConfig{8, 0, Architecture::kCompact}}) {
    TransformerNet net(config);
    randomize(net);
    c10::InferenceMode inference;
    for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{16, 16}, {17, 23}, {55, 97}, {64, 48}, {9 * 4, 130}}) {
      const torch::Tensor x = torch::rand({2, 3, h, w});
      const torch::Tensor fast = net->forward(x), slow = reference(net, x);
      ASSERT_EQ(fast.sizes(), slow.sizes());
      // Outputs lie in (0, 1); the two differ only in float rounding (the order of sums), which these random
      // weights amplify: at most 8.8e-6 on the development machine; a mistake in a pad or a phase shows as
      // 1e-2 and more.
      worst = std::max(worst, maxDifference(fast, slow));
      EXPECT_LT(maxDifference(fast, slow), 1e-4)
          << architectureName(config.type) << " " << config.width << "/" << config.blocks << " at " << w << "x" << h;
    }
  }
  std::cout << "largest difference: " << worst << "\n";
}

TEST(FusedInference, EveryBundledModelGivesTodaysPictureWithin1e4) {
  const torch::Tensor photo = loadImage(test::sourceDir() / "samples/calibration/0be391239ccba0f2.jpg").unsqueeze(0);
  int models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::sourceDir() / "models")) {
    if (entry.path().extension() != ".safetensors") continue;
    StyleModel model = loadStyleModel(entry.path());
    model.net->eval();
    c10::InferenceMode inference;
    const double difference = maxDifference(model.net->forward(photo), reference(model.net, photo));
    EXPECT_LT(difference, 1e-4) << entry.path().filename();
    std::cout << entry.path().filename().string() << ": " << difference << "\n";
    ++models;
  }
  EXPECT_GE(models, 5);
}

TEST(FusedInference, TrainingKeepsTheDifferentiableForward) {
  TransformerNet net(TransformerConfig{8, 1, Architecture::kCompact});
  const torch::Tensor y = net->forward(torch::rand({1, 3, 32, 32}));
  EXPECT_TRUE(y.requires_grad());
  y.mean().backward();
  EXPECT_TRUE(net->parameters().front().grad().defined());
}

TEST(FusedInference, NormalizePaddedEqualsNormReluAddThenPad) {
  torch::manual_seed(5);
  const torch::Tensor weight = torch::randn({6}) + 1, bias = torch::randn({6});
  for (const auto mode : {fused::Pad::kReflect, fused::Pad::kReplicate})
    for (const int64_t pad : {0, 1, 4}) {
      // Values far from zero with a small spread: the variance must not cancel.
      const auto channelsLast = torch::MemoryFormat::ChannelsLast;
      const torch::Tensor x = (torch::randn({2, 6, 9, 13}) * 0.1 + 10).contiguous(channelsLast);
      const torch::Tensor residual =
          torch::randn({2, 6, 11, 15}).contiguous(channelsLast).narrow(2, 1, 9).narrow(3, 1, 13);
      // The truth in double precision (ATen's float instance norm loses digits to cancellation here).
      const torch::Tensor normalized =
          F::instance_norm(x.to(torch::kDouble),
                           F::InstanceNormFuncOptions().weight(weight.to(torch::kDouble)).bias(bias.to(torch::kDouble)))
              .to(torch::kFloat);
      auto padded = [&](const torch::Tensor& t) {
        F::PadFuncOptions options({pad, pad, pad, pad});
        if (mode == fused::Pad::kReflect)
          options.mode(torch::kReflect);
        else
          options.mode(torch::kReplicate);
        return pad == 0 ? t : F::pad(t, options);
      };
      EXPECT_LT(maxDifference(fused::normalizePadded({x}, weight, bias, 1e-5, true, {}, pad, mode),
                              padded(torch::relu(normalized))),
                1e-4);
      EXPECT_LT(maxDifference(fused::normalizePadded({x}, weight, bias, 1e-5, false, residual, pad, mode),
                              padded(normalized + residual)),
                1e-4);
    }
  // A flat plane normalises to the bias exactly, as instance norm does.
  const torch::Tensor flat =
      fused::normalizePadded({torch::full({1, 6, 5, 5}, 0.3f).contiguous(torch::MemoryFormat::ChannelsLast)}, weight,
                             bias, 1e-5, false, {}, 1, fused::Pad::kReflect);
  EXPECT_TRUE(torch::equal(flat, bias.view({1, 6, 1, 1}).expand({1, 6, 7, 7})));
}

TEST(FusedInference, ComposedPaddingsAreOneCopy) {
  const torch::Tensor x = torch::rand({1, 2, 7, 10});
  const auto rows =
      fused::compose(fused::padIndex(7, 3, 4, fused::Pad::kReflect), fused::padIndex(14, 2, 2, fused::Pad::kReflect));
  const auto cols = fused::compose(fused::padIndex(10, 2, 0, fused::Pad::kReflect),
                                   fused::padIndex(12, 1, 1, fused::Pad::kReplicate));
  const torch::Tensor twice = F::pad(F::pad(x, F::PadFuncOptions({2, 0, 3, 4}).mode(torch::kReflect)),
                                     F::PadFuncOptions({0, 0, 2, 2}).mode(torch::kReflect));
  const torch::Tensor expected = F::pad(twice, F::PadFuncOptions({1, 1, 0, 0}).mode(torch::kReplicate));
  EXPECT_TRUE(torch::equal(fused::gather(x, rows, cols), expected));
  EXPECT_THROW(fused::padIndex(4, 4, 0, fused::Pad::kReflect), c10::Error);
}

}  // namespace
}  // namespace stylize
