#include "train/temporal_loss.h"

#include <torch/torch.h>

#include <cmath>

namespace stylize {

namespace F = torch::nn::functional;

torch::Tensor randomMotion(int64_t batch, int64_t height, int64_t width, const MotionRange& range) {
  auto uniform = [&](double a) { return (torch::rand({batch}, torch::kFloat64) * 2 - 1) * a; };
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
  torch::Tensor theta = torch::zeros({batch, 2, 3});
  theta.select(1, 0).select(1, 0).fill_(1);
  theta.select(1, 1).select(1, 1).fill_(1);
  // Sampling at x + d moves the picture by -d: a motion of +dx pixels samples at x - dx.
  theta.select(1, 0).select(1, 2).fill_(-2 * dx / width);
  theta.select(1, 1).select(1, 2).fill_(-2 * dy / height);
  return theta;
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
  const torch::Tensor diff = (outputOfMoved - movedOutput).pow(2) * mask;
  return diff.sum() / (mask.sum() * outputOfMoved.size(1) + 1e-8);
}

}  // namespace stylize
