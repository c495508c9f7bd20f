// A transform network for live video on a CPU: the same loss and training as Johnson's network, a
// fraction of the work per pixel. Johnson's network spends most of its time at full resolution (two 9×9
// convs and a 3×3 at 2w channels after upsampling); this one works at full resolution only in its first
// stride-2 conv and in its last upsampling conv to RGB, and keeps its residual blocks at ¼ resolution with
// 4w channels. Upsampling is nearest + conv, as in Johnson's network: pixel shuffle (cheaper) let the style
// loss grow a 2-pixel checkerboard, since each output phase had its own weights.
//
//   3×3 stride-2 conv (w) → 3×3 stride-2 conv (4w) → blocks × residual(4w)
//   → upsample ×2, 3×3 conv (w) → upsample ×2, 3×3 conv to RGB
//
// With w = 8 and 3 blocks: 0.06 M parameters and 7× fewer multiply-adds per pixel than the 16-wide Johnson
// network (3.9 k vs 28 k); more than that in time, as full-resolution layers are memory-bound. The pixel-shuffle convs
// start as nearest-neighbour upsampling (initForPixelShuffle).
#pragma once

#include "nets/layers.h"

namespace stylize {

class CompactNetImpl : public torch::nn::Module {
 public:
  CompactNetImpl(int64_t width, int64_t blocks);
  // x: [N, 3, H, W] with H, W multiples of 4. Returns the pre-activation RGB at the same size.
  torch::Tensor forward(const torch::Tensor& x);
  // The same without gradients on the CPU (nets/fused_inference.h): `padded` is the input reflection-padded
  // by 1 more than forward()'s; returns the pre-activation RGB, phased.
  fused::Activation forwardFused(const torch::Tensor& padded);

 private:
  ConvLayer stem{nullptr}, down{nullptr};
  torch::nn::InstanceNorm2d in1{nullptr}, in2{nullptr}, in3{nullptr};
  torch::nn::Sequential residuals{nullptr};
  UpsampleConvLayer up{nullptr}, toRgb{nullptr};
};
TORCH_MODULE(CompactNet);

}  // namespace stylize
