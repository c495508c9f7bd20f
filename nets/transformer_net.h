// The image transform network of Johnson, Alahi & Fei-Fei (ECCV 2016), with the later fixes everyone
// adopted: instance norm (Ulyanov et al.) and nearest-neighbour upsampling + conv instead of transposed
// convs (no checkerboard artifacts). Reflection padding everywhere. TransformerNet also runs the compact
// network (nets/compact_net.h): both share the padding, the output activation and the model format.
//
//   9×9 conv (w) → 3×3 stride-2 conv (2w) → 3×3 stride-2 conv (4w) → blocks × residual(4w)
//   → upsample ×2, 3×3 conv (2w) → upsample ×2, 3×3 conv (w) → 9×9 conv to RGB → (tanh + 1) / 2
#pragma once

#include <string>

#include "nets/compact_net.h"

namespace stylize {

enum class Architecture {
  kJohnson,  // Johnson et al.'s network, above
  kCompact,  // CompactNet: for live video on a CPU (nets/compact_net.h)
  // pytorch/examples' fast_neural_style TransformerNet, for imported models (`stylize import`): Johnson's
  // layers exactly, but pixels in 0..255 in and out with no tanh, and no margin: it runs on the image as
  // it is (sizes not divisible by 4 come out larger, and are cropped to the input's size at the top left).
  kPyTorchExamples,
};
std::string architectureName(Architecture architecture);  // "johnson", "compact", "pytorch_examples"
Architecture parseArchitecture(const std::string& name);  // throws Error for an unknown name

struct TransformerConfig {
  int64_t width = 32;  // channels of the first layer; Johnson's network is 32
  int64_t blocks = 5;  // residual blocks
  Architecture type = Architecture::kJohnson;
  // Range σ of the bilateral denoiser the input passes first (bilateralDenoise in nets/layers.h); 0 = none.
  // Part of the model, not of the weights: a fine-tune may add it.
  double denoise = 0;
  bool operator==(const TransformerConfig& o) const {
    return width == o.width && blocks == o.blocks && type == o.type && denoise == o.denoise;
  }
  bool operator!=(const TransformerConfig& o) const { return !(*this == o); }
  // The standard size of each architecture: Johnson's 32/5, compact 8/3.
  static TransformerConfig defaults(Architecture type) {
    return type == Architecture::kCompact ? TransformerConfig{8, 3, type} : TransformerConfig{32, 5, type};
  }
};

// Multiply-adds of one forward pass over an h×w image, as computed (margin included, upsampling convs in
// their four-phase form): the compute floor of `stylize bench transformer` is 2× this over the sgemm rate.
double multiplyAdds(const TransformerConfig& config, int64_t h, int64_t w);

class TransformerNetImpl : public torch::nn::Module {
 public:
  // Inputs smaller than this on either side are rejected: the two stride-2 stages need room.
  static constexpr int64_t kMinSide = 16;
  // Reflection margin around the input (Johnson and compact): border pixels then see image content, not
  // padding.
  static constexpr int64_t kMargin = 8;

  explicit TransformerNetImpl(TransformerConfig config = {});
  const TransformerConfig& config() const { return config_; }

  // x: [N, 3, H, W] RGB in [0, 1], any H, W ≥ kMinSide. Denoises it if the config says so, reflect-pads to a multiple
  // of 4 plus a margin and crops back, so odd sizes work and borders are clean. Output in (0, 1). `preActivation`, when
  // given, receives the input of the final tanh (same size), for the trainer's saturation penalty; it is left undefined
  // for kPyTorchExamples, whose output is unbounded (clamp it).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* preActivation = nullptr);

 private:
  torch::Tensor johnson(torch::Tensor y);
  fused::Activation johnsonFused(const torch::Tensor& padded);  // `padded`: by 4 more, for the 9×9 conv

  TransformerConfig config_;
  CompactNet compact{nullptr};  // the whole body when config_.type is kCompact; else Johnson's layers below
  ConvLayer conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::InstanceNorm2d in1{nullptr}, in2{nullptr}, in3{nullptr}, in4{nullptr}, in5{nullptr};
  torch::nn::Sequential residuals{nullptr};
  UpsampleConvLayer deconv1{nullptr}, deconv2{nullptr};
  ConvLayer deconv3{nullptr};
};
TORCH_MODULE(TransformerNet);

}  // namespace stylize
