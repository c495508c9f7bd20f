#include "train/temporal_loss.h"

#include <torch/torch.h>

#include <algorithm>
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
  if (range.kind == MotionKind::kShift) {
    const auto pixels = [&] { return torch::round(uniform(range.shift + 0.5)); };
    return translationBy(pixels(), pixels(), height, width);
  }
  if (range.kind == MotionKind::kSubpixel)
    return translationBy(uniform(range.shift), uniform(range.shift), height, width);
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

torch::Tensor translationInPixels(const torch::Tensor& motion, int64_t height, int64_t width) {
  // The inverse of translationBy: the third column holds -2d/W and -2d/H.
  const torch::Tensor m = motion.to(torch::kFloat32);
  return torch::stack({-m.select(1, 0).select(1, 2) * width / 2, -m.select(1, 1).select(1, 2) * height / 2}, 1);
}

torch::Tensor warpImages(const torch::Tensor& images, const torch::Tensor& motion) {
  const torch::Tensor grid =
      F::affine_grid(motion.to(images.device(), images.scalar_type()), images.sizes(), /*align_corners=*/false);
  return F::grid_sample(
      images, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

torch::Tensor fourierShiftImages(const torch::Tensor& images, const torch::Tensor& motion) {
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  // Reflect padding makes the periodic extension continuous, so the shift rings only faintly at the edges;
  // the pad is wider than any move, so nothing wraps around into the frame.
  const int64_t pad = std::min<int64_t>(16, std::min(h, w) - 1);
  const auto opts = torch::TensorOptions().device(images.device()).dtype(torch::kFloat32);
  const torch::Tensor shift = translationInPixels(motion.to(images.device()), h, w);
  const torch::Tensor dx = shift.select(1, 0).view({n, 1, 1, 1}), dy = shift.select(1, 1).view({n, 1, 1, 1});
  const torch::Tensor padded =
      F::pad(images.to(torch::kFloat32), F::PadFuncOptions({pad, pad, pad, pad}).mode(torch::kReflect));
  const int64_t ph = h + 2 * pad, pw = w + 2 * pad;
  const torch::Tensor fy = torch::fft::fftfreq(ph, opts).view({1, 1, ph, 1}),
                      fx = torch::fft::rfftfreq(pw, opts).view({1, 1, 1, pw / 2 + 1});
  // Moving the content by +d multiplies frequency f by exp(-2πi f·d).
  const torch::Tensor phase = (fx * dx + fy * dy) * (-2 * M_PI);
  const torch::Tensor shifted =
      torch::fft::irfft2(torch::fft::rfft2(padded) * torch::polar(torch::ones_like(phase), phase), {{ph, pw}});
  return shifted.narrow(2, pad, h).narrow(3, pad, w).to(images.scalar_type());
}

torch::Tensor moveImages(const torch::Tensor& images, const torch::Tensor& motion, MotionKind kind) {
  return kind == MotionKind::kSubpixel ? fourierShiftImages(images, motion) : warpImages(images, motion);
}

torch::Tensor warpValidMask(const torch::Tensor& motion, int64_t height, int64_t width, const torch::Device& device,
                            int64_t margin) {
  const torch::Tensor ones = torch::ones({motion.size(0), 1, height, width}, torch::TensorOptions().device(device));
  const torch::Tensor mask = (warpImages(ones, motion) > 0.999).to(torch::kFloat32);
  if (margin <= 0) return mask;
  // Erode the invalid border inwards; max_pool pads with -inf, so the frame's own edge does not erode.
  return 1 - F::max_pool2d(1 - mask, F::MaxPool2dFuncOptions(2 * margin + 1).stride(1).padding(margin));
}

torch::Tensor temporalLoss(const torch::Tensor& outputOfMoved, const torch::Tensor& movedOutput,
                           const torch::Tensor& mask) {
  // Each image's mean over its own valid pixels, then the mean over images: every image counts the same
  // however far it moved, and a batch split over ranks averages to the whole batch's value.
  const torch::Tensor diff = ((outputOfMoved - movedOutput).pow(2) * mask).sum({1, 2, 3});
  return (diff / (mask.sum({1, 2, 3}) * outputOfMoved.size(1) + 1e-8)).mean();
}

}  // namespace stylize
