#include "train/temporal_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace stylize {
namespace {

using torch::indexing::Slice;

TEST(TemporalLoss, TranslationMovesPixelsExactly) {
  torch::manual_seed(2);
  const torch::Tensor image = torch::rand({1, 3, 20, 30});
  const torch::Tensor moved = warpImages(image, translation(1, 20, 30, 2, -1));
  // Content moves 2 right and 1 up: moved[y, x] = image[y + 1, x - 2].
  EXPECT_TRUE(torch::allclose(moved.index({Slice(), Slice(), Slice(0, 19), Slice(2, 30)}),
                              image.index({Slice(), Slice(), Slice(1, 20), Slice(0, 28)}), 1e-5, 1e-5));
  const torch::Tensor mask = warpValidMask(translation(1, 20, 30, 2, -1), 20, 30, torch::kCPU);
  EXPECT_EQ(mask.sum().item<float>(), 19 * 28);
}

TEST(TemporalLoss, ZeroForAnEquivariantFunctionPositiveOtherwise) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::rand({2, 3, 24, 32});
  const torch::Tensor motion = translation(2, 24, 32, 3, 2);
  const torch::Tensor mask = warpValidMask(motion, 24, 32, torch::kCPU);
  auto pointwise = [](const torch::Tensor& t) { return torch::sigmoid(4 * t - 2); };  // commutes with moves
  EXPECT_LT(temporalLoss(pointwise(warpImages(x, motion)), warpImages(pointwise(x), motion), mask).item<float>(),
            1e-10);
  const torch::Tensor ramp = torch::linspace(0, 1, 32).view({1, 1, 1, 32});
  auto anchored = [&](const torch::Tensor& t) { return t + ramp; };  // tied to the frame: not equivariant
  EXPECT_GT(temporalLoss(anchored(warpImages(x, motion)), warpImages(anchored(x), motion), mask).item<float>(), 1e-3);
}

TEST(TemporalLoss, RandomMotionsStaySmall) {
  torch::manual_seed(4);
  for (const bool wholePixels : {true, false}) {
    MotionRange range;
    range.wholePixels = wholePixels;
    const torch::Tensor motion = randomMotion(64, 100, 200, range);
    ASSERT_EQ(motion.sizes(), (std::vector<int64_t>{64, 2, 3}));
    const torch::Tensor mask = warpValidMask(motion, 100, 200, torch::kCPU);
    const torch::Tensor valid = mask.mean({1, 2, 3});
    EXPECT_GT(valid.min().item<float>(), 0.75) << wholePixels;  // small moves reveal little new content
    EXPECT_LT(valid.mean().item<float>(), 0.999) << wholePixels;
  }
}

TEST(TemporalLoss, WholePixelMotionsCopyPixelsSubPixelMotionsBlur) {
  torch::manual_seed(5);
  const int64_t n = 32, h = 40, w = 50;
  const torch::Tensor noise = torch::rand({n, 1, h, w});  // all fine detail
  const torch::Tensor motion = randomMotion(n, h, w);     // whole pixels by default
  const torch::Tensor dx = -motion.select(1, 0).select(1, 2) * w / 2, dy = -motion.select(1, 1).select(1, 2) * h / 2;
  EXPECT_TRUE(torch::allclose(dx, dx.round(), 0, 1e-4) && torch::allclose(dy, dy.round(), 0, 1e-4));
  EXPECT_LE(dx.abs().max().item<float>(), 6.0f);
  EXPECT_GT(dx.abs().max().item<float>(), 3.0f);  // the range is used
  const torch::Tensor moved = warpImages(noise, motion), masks = warpValidMask(motion, h, w, torch::kCPU);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t sx = std::lround(dx[i].item<double>()), sy = std::lround(dy[i].item<double>());
    const torch::Tensor rolled = torch::roll(noise[i], {sy, sx}, {1, 2});
    EXPECT_LT(((moved[i] - rolled).abs() * masks[i]).max().item<float>(), 1e-4) << "image " << i;
  }
  // Resampling between pixels averages neighbours: the detail a network must reproduce is blurred away.
  auto keptVariance = [&](const torch::Tensor& m) {
    const torch::Tensor mask = warpValidMask(m, h, w, torch::kCPU);
    const torch::Tensor v = warpImages(noise, m);
    const torch::Tensor mean = (v * mask).sum() / mask.sum();
    return (((v - mean).pow(2) * mask).sum() / mask.sum() / noise.var()).item<double>();
  };
  EXPECT_NEAR(keptVariance(motion), 1.0, 0.05);
  MotionRange affine;
  affine.wholePixels = false;
  EXPECT_LT(keptVariance(randomMotion(n, h, w, affine)), 0.8);
}

}  // namespace
}  // namespace stylize
