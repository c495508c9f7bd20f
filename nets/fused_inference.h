// Inference on the CPU without the memory-bound steps between convolutions. The layer-by-layer forward
// (nets/layers.h) pads, normalises, activates and adds in separate passes over each activation, each
// allocating a fresh tensor: at 640×480 those passes took 40 % of the compact network's time against
// the convolutions' 60 %. Here each instance norm is one pass for its statistics and one that writes
// normalise + ReLU (+ residual) straight into the padded buffer the next convolution reads, and each
// nearest-upsample + 3×3 conv is one 2×2 convolution with four output phases, whose interleaving is folded
// into the pass that reads it. The results equal the layer-by-layer forward up to float rounding.
//
// Used by TransformerNet::forward when no gradient is wanted and the input is float32 on the CPU; the
// trainer, the optimizer and CUDA keep the layer-by-layer forward.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace stylize::fused {

// Whether TransformerNet uses this path where it applies (default on; STYLIZE_FUSED=0 or setEnabled(false)
// turns it off, for comparisons: `stylize bench transformer` times both).
bool enabled();
void setEnabled(bool on);

enum class Pad { kReflect, kReplicate };

// The source index of each position of an axis of `size` padded by `before` and `after`.
std::vector<int64_t> padIndex(int64_t size, int64_t before, int64_t after, Pad mode);
// The source indices of `inner` (an index map over an already padded axis) read through `outer`.
std::vector<int64_t> compose(const std::vector<int64_t>& outer, const std::vector<int64_t>& inner);

// out[n, c, y, x] = in[n, c, rows[y], cols[x]]: several paddings applied in one copy, into channels-last.
// All activations of this path are channels-last (NHWC in memory) with [N, C, H, W] sizes.
torch::Tensor gather(const torch::Tensor& x, const std::vector<int64_t>& rows, const std::vector<int64_t>& cols);

// A convolution's output as the next pass reads it: plain [N, C, H, W] (channels-last), or the four phases of a
// nearest-upsample conv (`phased`: [N, 4C, H/2 + 1, W/2 + 1], phase p = 2a + b holding output pixels
// (2i + a, 2j + b) at (i + a, j + b)), standing for [N, C, H, W].
struct Activation {
  torch::Tensor data;
  bool phased = false;
  // A k×k conv to few channels as a 1×k conv to C·k (oneDNN vectorises over output channels, so a 9×9
  // conv 16→3 ran no faster than 16→16): logical channel o at (y, x) is the sum over t < rowTaps of
  // data[y + t, x, o·rowTaps + t]. See rowSplitConv.
  int64_t rowTaps = 1;
  int64_t channels() const { return phased ? data.size(1) / 4 : data.size(1) / rowTaps; }
  int64_t height() const { return phased ? 2 * (data.size(2) - 1) : data.size(2) - (rowTaps - 1); }
  int64_t width() const { return phased ? 2 * (data.size(3) - 1) : data.size(3); }
};

// Instance norm with affine `weight`/`bias`, then ReLU if `relu`, then + `residual` if defined (an
// [N, C, H, W] channels-last view), written into a new channels-last tensor padded by `pad` on every side.
torch::Tensor normalizePadded(const Activation& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                              bool relu, const torch::Tensor& residual, int64_t pad, Pad mode);

// The same with an InstanceNorm2d module's affine weights and eps.
inline torch::Tensor normalizePadded(const Activation& x, const torch::nn::InstanceNorm2d& norm, bool relu,
                                     const torch::Tensor& residual, int64_t pad, Pad mode) {
  return normalizePadded(x, norm->weight, norm->bias, norm->options.eps(), relu, residual, pad, mode);
}

// The network's output: the [top, top + h) × [left, left + w) window of the pre-activation `x` (the margin
// cropped off) through (tanh + 1) / 2, as a contiguous NCHW tensor.
torch::Tensor finishRgb(const Activation& x, int64_t top, int64_t left, int64_t h, int64_t w);

// The interior of a tensor padded by `pad`: the unpadded activation, as a view.
torch::Tensor interior(const torch::Tensor& padded, int64_t pad);

// A nearest-upsample ×2 + 3×3 conv as one 2×2 conv with four phases (the layer-by-layer forward uses the
// same kernels, one phase at a time): weights [4·out, in, 2, 2] and bias
// [4·out] made from the 3×3 conv's. Its input is the source replicate-padded by 1.
struct PhaseConv {
  torch::Tensor weight, bias;
};
PhaseConv phaseConv(const torch::Tensor& weight3x3, const torch::Tensor& bias);
Activation runPhaseConv(const torch::Tensor& paddedInput, const PhaseConv& conv);

// A k×k conv module (stride 1) as the row-split Activation above: for the final 9×9 conv to RGB, 3.9× faster
// on one AVX2 core. Only finishRgb() reads it.
Activation rowSplitConv(const torch::nn::Conv2d& conv, const torch::Tensor& padded);

// A (padding-free) conv module applied to a padded channels-last activation, in channels-last.
torch::Tensor convolve(const torch::nn::Conv2d& conv, const torch::Tensor& padded);

}  // namespace stylize::fused
