// Temporal consistency from still photos (no video dataset): a random small motion of a training crop has
// an exact flow, and a stable network commutes with it, stylize(warp(x)) = warp(stylize(x)), wherever the
// warp does not reveal new content. Noise on the moved copy teaches robustness to sensor and codec noise.
#pragma once

#include <torch/types.h>

namespace stylize {

enum class MotionKind {
  // Whole-pixel translations: the moved copy and the moved output are exact copies of shifted pixels.
  kShift,
  // Translations by any fraction of a pixel, moved by Fourier phase shift (band-limited interpolation): as
  // sharp as whole-pixel moves, and they also teach the sub-pixel steps of slow real motion (a walker, a
  // shaking hand), to which a network with stride-2 layers is not equivariant by construction.
  kSubpixel,
  // Sub-pixel shift, zoom and rotation by bilinear resampling, which blurs both the moved copy and the
  // target, so a network that must match a blurred target learns to paint less fine texture.
  kAffine,
};

struct MotionRange {
  double shift = 6;     // pixels, each axis
  double zoom = 0.03;   // relative (affine only)
  double rotation = 2;  // degrees (affine only)
  MotionKind kind = MotionKind::kShift;
};

// One random motion per image, as affine_grid parameters [N, 2, 3] (torch's global generator).
torch::Tensor randomMotion(int64_t batch, int64_t height, int64_t width, const MotionRange& range = {});
// A pure translation by (dx, dy) pixels, for tests.
torch::Tensor translation(int64_t batch, int64_t height, int64_t width, double dx, double dy);
// The translation part of `motion` in pixels: [N, 2] as (dx, dy), float32 on motion's device.
torch::Tensor translationInPixels(const torch::Tensor& motion, int64_t height, int64_t width);

// images [N, C, H, W] moved by `motion` (bilinear; outside the frame is zero).
torch::Tensor warpImages(const torch::Tensor& images, const torch::Tensor& motion);
// images moved by the translations in `motion` with a Fourier phase shift of the reflect-padded images:
// whole-pixel moves copy pixels, fractional ones interpolate without blur. What enters from outside the
// frame is a reflection (left out by the mask).
torch::Tensor fourierShiftImages(const torch::Tensor& images, const torch::Tensor& motion);
// warpImages, or fourierShiftImages for MotionKind::kSubpixel.
torch::Tensor moveImages(const torch::Tensor& images, const torch::Tensor& motion, MotionKind kind);
// 1 where the moved image is made only of pixels from inside the original frame, else 0: [N, 1, H, W].
// `margin` more pixels are left out next to the new content (a Fourier shift rings a little there).
torch::Tensor warpValidMask(const torch::Tensor& motion, int64_t height, int64_t width, const torch::Device& device,
                            int64_t margin = 0);

// Mean squared difference over each image's valid pixels and channels, averaged over the images:
// stylize(warp(x)) against warp(stylize(x)).
torch::Tensor temporalLoss(const torch::Tensor& outputOfMoved, const torch::Tensor& movedOutput,
                           const torch::Tensor& mask);

}  // namespace stylize
