// The image transform network of Johnson, Alahi & Fei-Fei (ECCV 2016), with the later fixes everyone
// adopted: instance norm (Ulyanov et al.) and nearest-neighbour upsampling + conv instead of transposed
// convs (no checkerboard artifacts). Reflection padding everywhere.
//
//   9×9 conv (w) → 3×3 stride-2 conv (2w) → 3×3 stride-2 conv (4w) → blocks × residual(4w)
//   → upsample ×2, 3×3 conv (2w) → upsample ×2, 3×3 conv (w) → 9×9 conv to RGB → (tanh + 1) / 2
#pragma once

#include <torch/torch.h>

namespace stylize {

struct TransformerConfig {
  int64_t width = 32;  // channels of the first layer; Johnson's network is 32
  int64_t blocks = 5;  // residual blocks
};

// Reflection padding + convolution, the building block of every layer.
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
  ConvLayer conv{nullptr};
};
TORCH_MODULE(UpsampleConvLayer);

class TransformerNetImpl : public torch::nn::Module {
 public:
  // Inputs smaller than this on either side are rejected: the two stride-2 stages need room.
  static constexpr int64_t kMinSide = 16;

  explicit TransformerNetImpl(TransformerConfig config = {});
  const TransformerConfig& config() const { return config_; }

  // x: [N, 3, H, W] RGB in [0, 1], any H, W ≥ kMinSide. Reflect-pads to a multiple of 4 plus a margin and
  // crops back, so odd sizes work and borders are clean. Output in (0, 1).
  torch::Tensor forward(const torch::Tensor& x);

 private:
  TransformerConfig config_;
  ConvLayer conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::InstanceNorm2d in1{nullptr}, in2{nullptr}, in3{nullptr}, in4{nullptr}, in5{nullptr};
  torch::nn::Sequential residuals{nullptr};
  UpsampleConvLayer deconv1{nullptr}, deconv2{nullptr};
  ConvLayer deconv3{nullptr};
};
TORCH_MODULE(TransformerNet);

}  // namespace stylize
