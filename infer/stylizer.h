// A trained style model ready to run: the network on a device, in a precision, with the blend and
// colour options every front end (image, video, live) offers.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "nets/style_model.h"

namespace stylize {

enum class Precision { kFloat32, kFloat16, kBFloat16 };
torch::ScalarType scalarType(Precision precision);

struct StylizeOptions {
  double strength = 1.0;        // 0 = the input, 1 = fully stylized, linear blend between
  bool preserveColors = false;  // luminance from the model, colours from the input
};

class Stylizer {
 public:
  // fp16 needs CUDA; on the CPU it is an error rather than a silent slowdown.
  Stylizer(const std::filesystem::path& model, const torch::Device& device, Precision precision = Precision::kFloat32);

  // images: [N, 3, H, W] (or [3, H, W]) in [0, 1] on any device. Returns the same shape in [0, 1] on this
  // Stylizer's device.
  torch::Tensor operator()(const torch::Tensor& images, const StylizeOptions& options = {});

  const std::string& name() const { return name_; }  // file stem, for overlays and logs
  const nlohmann::json& info() const { return info_; }
  const torch::Device& device() const { return device_; }

 private:
  TransformerNet net_{nullptr};
  nlohmann::json info_;
  std::string name_;
  torch::Device device_;
  Precision precision_;
};

}  // namespace stylize
