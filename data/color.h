// Colour-space helpers that work on any device (pure tensor code, no OpenCV).
#pragma once

#include <torch/types.h>

namespace stylize {

// Keeps the colours of `content`: the luminance of `stylized` with the chroma (BT.601 YCbCr) of `content`.
// Both [.., 3, H, W] of the same size, on one device. Gatys et al. 2017's luminance-only transfer.
torch::Tensor transferLuminance(const torch::Tensor& stylized, const torch::Tensor& content);

}  // namespace stylize
