// Temporal consistency from still photos (no video dataset): a random small motion of a training crop has
// an exact flow, and a stable network commutes with it, stylize(warp(x)) = warp(stylize(x)), wherever the
// warp does not reveal new content. Noise on the moved copy teaches robustness to sensor and codec noise.
#pragma once

#include <torch/types.h>

namespace stylize {

struct MotionRange {
  double shift = 6;     // pixels, each axis
  double zoom = 0.03;   // relative
  double rotation = 2;  // degrees
  // Whole-pixel translations only (no zoom or rotation): the moved copy and the moved output are then exact
  // copies of shifted pixels. Sub-pixel resampling blurs both, and a network that must match a blurred
  // target learns to paint less fine texture.
  bool wholePixels = true;
};

// One random motion per image (a whole-pixel shift, or sub-pixel affine), as affine_grid parameters [N, 2, 3]
// (torch's global generator).
torch::Tensor randomMotion(int64_t batch, int64_t height, int64_t width, const MotionRange& range = {});
// A pure translation by (dx, dy) pixels, for tests.
torch::Tensor translation(int64_t batch, int64_t height, int64_t width, double dx, double dy);

// images [N, C, H, W] moved by `motion` (bilinear; outside the frame is zero).
torch::Tensor warpImages(const torch::Tensor& images, const torch::Tensor& motion);
// 1 where the moved image is made only of pixels from inside the original frame, else 0: [N, 1, H, W].
torch::Tensor warpValidMask(const torch::Tensor& motion, int64_t height, int64_t width, const torch::Device& device);

// Mean squared difference over each image's valid pixels and channels, averaged over the images:
// stylize(warp(x)) against warp(stylize(x)).
torch::Tensor temporalLoss(const torch::Tensor& outputOfMoved, const torch::Tensor& movedOutput,
                           const torch::Tensor& mask);

}  // namespace stylize
