#include "train/temporal_loss.h"

#include <torch/torch.h>

#include <cmath>

namespace stylize {

namespace F = torch::nn::functional;

namespace {

// Per-image translations by (dx, dy) pixels [N] as affine_grid parameters [N, 2, 3].
torch::Tensor translationBy(const torch::Tensor& dx, const torch::Tensor& dy, int64_t height, int64_t width) {
  const torch::Tensor zero = torch::zeros_like(dx), one = torch::ones_like(dx);
  // Sampling at x + d moves the picture by -d: a motion of +dx pixels samples at x - dx; one pixel is 2/W wide.
  return torch::stack({torch::stack({one, zero, -2 * dx / width}, 1), torch::stack({zero, one, -2 * dy / height}, 1)},
                      1)
      .to(torch::kFloat32);
}

}  // namespace

torch::Tensor randomMotion(int64_t batch, int64_t height, int64_t width, const MotionRange& range) {
  auto uniform = [&](double a) { return (torch::rand({batch}, torch::kFloat64) * 2 - 1) * a; };
  if (range.wholePixels) {
    const auto pixels = [&] { return torch::round(uniform(range.shift + 0.5)); };
    return translationBy(pixels(), pixels(), height, width);
  }
  const torch::Tensor angle = uniform(range.rotation * M_PI / 180), scale = 1 + uniform(range.zoom);
  // In affine_grid's normalised coordinates one pixel is 2/W wide (align_corners=false).
  const torch::Tensor tx = uniform(range.shift) * 2 / width, ty = uniform(range.shift) * 2 / height;
  const torch::Tensor c = torch::cos(angle) * scale, s = torch::sin(angle) * scale;
  // Rotation in pixel space, expressed in normalised coordinates: the aspect ratio enters the off-diagonals.
  const double aspect = double(height) / width;
  return torch::stack({torch::stack({c, -s * aspect, tx}, 1), torch::stack({s / aspect, c, ty}, 1)}, 1)
      .to(torch::kFloat32);
}

torch::Tensor translation(int64_t batch, int64_t height, int64_t width, double dx, double dy) {
  return translationBy(torch::full({batch}, dx, torch::kFloat64), torch::full({batch}, dy, torch::kFloat64), height,
                       width);
}

torch::Tensor warpImages(const torch::Tensor& images, const torch::Tensor& motion) {
  const torch::Tensor grid =
      F::affine_grid(motion.to(images.device(), images.scalar_type()), images.sizes(), /*align_corners=*/false);
  return F::grid_sample(
      images, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

torch::Tensor warpValidMask(const torch::Tensor& motion, int64_t height, int64_t width, const torch::Device& device) {
  const torch::Tensor ones = torch::ones({motion.size(0), 1, height, width}, torch::TensorOptions().device(device));
  return (warpImages(ones, motion) > 0.999).to(torch::kFloat32);
}

torch::Tensor temporalLoss(const torch::Tensor& outputOfMoved, const torch::Tensor& movedOutput,
                           const torch::Tensor& mask) {
  // Each image's mean over its own valid pixels, then the mean over images: every image counts the same
  // however far it moved, and a batch split over ranks averages to the whole batch's value.
  const torch::Tensor diff = ((outputOfMoved - movedOutput).pow(2) * mask).sum({1, 2, 3});
  return (diff / (mask.sum({1, 2, 3}) * outputOfMoved.size(1) + 1e-8)).mean();
}

}  // namespace stylize
