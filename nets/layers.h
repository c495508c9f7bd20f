// The building blocks both transform networks are made of. Reflection padding everywhere: zero padding
// leaves dark frames around every stylized image.
#pragma once

#include <torch/torch.h>

#include "nets/fused_inference.h"

namespace stylize {

torch::nn::InstanceNorm2d instanceNorm(int64_t channels);

// An edge-preserving denoiser in front of a transform network (a bilateral filter, Tomasi & Manduchi
// 1998): each pixel becomes the mean of its 5×5 neighbourhood, weighted by distance (σ 1.5 px) and by
// colour difference (σ `rangeSigma`, RGB in 0..1). Noise well below rangeSigma averages away; edges and
// texture of higher contrast stay. Why it is there: on a still camera most of a per-frame model's flicker
// is its answer to sensor and codec noise, and a network trained to ignore that noise itself (the temporal
// loss) learns to leave flat areas unpainted; with the noise taken out first it need not.
// images: [N, 3, H, W]; reflection at the borders; any float type and device.
torch::Tensor bilateralDenoise(const torch::Tensor& images, double rangeSigma);
constexpr int64_t kDenoiseRadius = 2;
constexpr double kDenoiseSpatialSigma = 1.5;
// The log of a tap's distance weight; the ONNX export (nets/onnx_io.cpp) writes the same filter.
inline double denoiseSpatialLogWeight(int64_t dx, int64_t dy) {
  return -double(dx * dx + dy * dy) / (2 * kDenoiseSpatialSigma * kDenoiseSpatialSigma);
}

// Reflection padding + convolution.
struct ConvLayerImpl : torch::nn::Module {
  ConvLayerImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ReflectionPad2d pad{nullptr};
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(ConvLayer);

struct ResidualBlockImpl : torch::nn::Module {
  explicit ResidualBlockImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  // Inference (nets/fused_inference.h): `padded` is the block's input reflection-padded by 1; returns its
  // output padded by 1 in `next` mode, for the layer that follows.
  torch::Tensor forwardFused(const torch::Tensor& padded, fused::Pad next);
  ConvLayer conv1{nullptr}, conv2{nullptr};
  torch::nn::InstanceNorm2d in1{nullptr}, in2{nullptr};
};
TORCH_MODULE(ResidualBlock);

// Nearest ×2 upsampling then a reflection-padded 3×3 conv, computed without materialising the upsampled
// image: each of the four output phases is a 2×2 conv of the (replicate-padded) input with summed taps.
// Exactly the same result for 2.25× fewer multiply-adds. forwardReference() is the literal version.
struct UpsampleConvLayerImpl : torch::nn::Module {
  UpsampleConvLayerImpl(int64_t in, int64_t out, int64_t kernel);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forwardReference(const torch::Tensor& x);
  // Inference: `padded` is the input replicate-padded by 1; the result is phased (nets/fused_inference.h).
  fused::Activation forwardFused(const torch::Tensor& padded);
  ConvLayer conv{nullptr};
};
TORCH_MODULE(UpsampleConvLayer);

}  // namespace stylize
