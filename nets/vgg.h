// VGG19's convolutional part as a loss network (Simonyan & Zisserman 2015; Gatys et al. 2016).
//
// Reads torchvision-named safetensors (`features.N.weight/bias`): the full 16-layer network (timm's
// vgg19.tv_in1k, whose classifier keys are ignored) or any prefix of it, such as the conv1_1..conv3_4
// file in shared/. Input: RGB in [0, 1]; the ImageNet mean/std normalisation happens inside.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace stylize {

enum class Pooling { kMax, kAverage };

// Per conv layer, the mean activation of each channel after ReLU over a set of photos.
using ChannelMeans = std::map<std::string, torch::Tensor>;

class Vgg19 {
 public:
  // The 16 conv layers in order: conv1_1, conv1_2, conv2_1, ..., conv5_4.
  static const std::vector<std::string>& convLayerNames();
  // True for conv*/relu*/pool* names of VGG19, whether or not they were loaded.
  static bool isLayerName(const std::string& name);

  // Loads every conv layer present, which must be a prefix (conv1_1 .. convX_Y). Throws Error naming the
  // file on a missing prefix layer, a shape or dtype mismatch, or a weight without its bias.
  static Vgg19 load(const std::filesystem::path& path, Pooling pooling = Pooling::kMax);

  const std::filesystem::path& path() const { return path_; }
  const std::string& fingerprint() const { return fingerprint_; }  // identifies the weights' bytes
  int loadedConvLayers() const { return static_cast<int>(weights_.size()); }
  bool hasLayer(const std::string& tap) const;
  // Throws Error("<file> has conv1_1..conv3_4; relu4_2 needs conv4_2 (features.30.*) ...") when absent.
  void requireLayers(const std::vector<std::string>& taps) const;
  std::string loadedRange() const;  // "conv1_1..conv3_4"

  // Activations at the requested taps; computation stops at the deepest one. x: [N, 3, H, W].
  std::map<std::string, torch::Tensor> forward(const torch::Tensor& x, const std::vector<std::string>& taps) const;

  // Gatys' network normalisation, per layer: rescales each conv layer's weights and bias so that the
  // layer's mean ReLU activation over the calibration photos is 1, without changing what the network
  // computes up to a positive factor per layer. Makes loss weights independent of whether the weights
  // are at Caffe scale (activations ~1e4) or torchvision scale (~1).
  ChannelMeans channelMeans(const std::vector<torch::Tensor>& photos) const;
  void normalize(const ChannelMeans& means);
  bool normalized() const { return normalized_; }

  void to(const torch::Device& device);
  torch::Device device() const;

 private:
  std::filesystem::path path_;
  std::string fingerprint_;
  Pooling pooling_ = Pooling::kMax;
  bool normalized_ = false;
  std::vector<torch::Tensor> weights_, biases_;
  torch::Tensor mean_, std_;
};

// Loads VGG19 and normalises it. The channel means are computed on `calibrationPhotos()` the first time
// and cached in `cacheDir` under the weights' fingerprint, so later runs load them instantly.
Vgg19 loadNormalizedVgg19(const std::filesystem::path& weights, const std::filesystem::path& cacheDir,
                          const std::function<std::vector<torch::Tensor>()>& calibrationPhotos,
                          Pooling pooling = Pooling::kMax);

}  // namespace stylize
