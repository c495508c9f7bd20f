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
  for (const MotionKind kind : {MotionKind::kShift, MotionKind::kSubpixel, MotionKind::kAffine}) {
    MotionRange range;
    range.kind = kind;
    const torch::Tensor motion = randomMotion(64, 100, 200, range);
    ASSERT_EQ(motion.sizes(), (std::vector<int64_t>{64, 2, 3}));
    const torch::Tensor mask = warpValidMask(motion, 100, 200, torch::kCPU, kind == MotionKind::kSubpixel ? 2 : 0);
    const torch::Tensor valid = mask.mean({1, 2, 3});
    EXPECT_GT(valid.min().item<float>(), 0.75) << int(kind);  // small moves reveal little new content
    EXPECT_LT(valid.mean().item<float>(), 0.999) << int(kind);
  }
}

TEST(TemporalLoss, WholePixelMotionsCopyPixelsSubPixelMotionsBlur) {
  torch::manual_seed(5);
  const int64_t n = 32, h = 40, w = 50;
  const torch::Tensor noise = torch::rand({n, 1, h, w});  // all fine detail
  const torch::Tensor motion = randomMotion(n, h, w);     // whole pixels by default
  const torch::Tensor shift = translationInPixels(motion, h, w), dx = shift.select(1, 0), dy = shift.select(1, 1);
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
  affine.kind = MotionKind::kAffine;
  EXPECT_LT(keptVariance(randomMotion(n, h, w, affine)), 0.8);
}

TEST(TemporalLoss, FourierShiftIsExactForWholePixelsAndSharpBetweenThem) {
  torch::manual_seed(6);
  const int64_t h = 40, w = 50;
  // A smooth picture (a few low frequencies): a band-limited shift of it is known in closed form.
  const torch::Tensor y = torch::arange(h, torch::kFloat32).view({1, 1, h, 1}),
                      x = torch::arange(w, torch::kFloat32).view({1, 1, 1, w});
  auto picture = [&](double dx, double dy) {
    const torch::Tensor xs = x - dx, ys = y - dy;
    return 0.5 + 0.2 * torch::sin(xs * 0.31 + ys * 0.17) + 0.1 * torch::cos(ys * 0.45 - 0.6) * torch::sin(xs * 0.2);
  };
  const torch::Tensor mask = warpValidMask(translation(1, h, w, 2.5, -1.5), h, w, torch::kCPU, 2);
  const torch::Tensor exact = picture(2.5, -1.5);
  const torch::Tensor fourier = fourierShiftImages(picture(0, 0), translation(1, h, w, 2.5, -1.5));
  EXPECT_LT(((fourier - exact).abs() * mask).max().item<float>(), 0.01);
  EXPECT_GT(mask.mean().item<float>(), 0.75);

  // Whole pixels: the same as copying pixels, inside the mask.
  const torch::Tensor noise = torch::rand({2, 3, h, w});
  const torch::Tensor whole = translation(2, h, w, 3, -2);
  EXPECT_LT(
      ((fourierShiftImages(noise, whole) - warpImages(noise, whole)).abs() * warpValidMask(whole, h, w, torch::kCPU, 2))
          .max()
          .item<float>(),
      1e-3);
  // Half a pixel twice is one pixel, and the detail survives: bilinear would have halved its variance.
  const torch::Tensor half = translation(2, h, w, 0.5, 0), one = translation(2, h, w, 1, 0);
  const torch::Tensor twice = fourierShiftImages(fourierShiftImages(noise, half), half);
  const torch::Tensor inner = warpValidMask(translation(2, h, w, 3, 0), h, w, torch::kCPU, 3);
  // (In RMS: white noise's Nyquist frequency cannot be moved by half a pixel, it falls between the samples;
  // bilinear's two half steps are a [1/4, 1/2, 1/4] blur, an RMS error of 0.18 on this noise, against 0.06.)
  auto rmsAgainstOne = [&](const torch::Tensor& t) {
    return (((t - warpImages(noise, one)).pow(2) * inner).sum() / (3 * inner.sum())).sqrt().item<float>();
  };
  EXPECT_LT(rmsAgainstOne(twice), 0.09);
  EXPECT_GT(rmsAgainstOne(warpImages(warpImages(noise, half), half)), 0.14);
  const torch::Tensor halfMoved = fourierShiftImages(noise, half);
  EXPECT_GT((halfMoved * inner).var().item<float>(), 0.8 * (warpImages(noise, one) * inner).var().item<float>());
  EXPECT_LT((warpImages(noise, half) * inner).var().item<float>(),
            0.8 * (warpImages(noise, one) * inner).var().item<float>());
}

TEST(TemporalLoss, TranslationInPixelsReadsBackTheMove) {
  const torch::Tensor shift = translationInPixels(translation(2, 24, 32, 3, -2.5), 24, 32);
  ASSERT_EQ(shift.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_TRUE(torch::allclose(shift, torch::tensor({{3.0f, -2.5f}, {3.0f, -2.5f}}), 0, 1e-5));
}

TEST(TemporalLoss, SubpixelMotionsAreFractionalTranslations) {
  torch::manual_seed(7);
  MotionRange range;
  range.kind = MotionKind::kSubpixel;
  const torch::Tensor motion = randomMotion(256, 64, 64, range);
  const torch::Tensor dx = translationInPixels(motion, 64, 64).select(1, 0);
  EXPECT_LE(dx.abs().max().item<float>(), 6.0f);
  EXPECT_GT((dx - dx.round()).abs().max().item<float>(), 0.3f);  // fractions are drawn, not only whole pixels
  EXPECT_EQ(motion.select(1, 0).select(1, 1).abs().max().item<float>(), 0);  // no rotation
  EXPECT_EQ(motion.select(1, 0).select(1, 0).min().item<float>(), 1);        // no zoom
}

}  // namespace
}  // namespace stylize
