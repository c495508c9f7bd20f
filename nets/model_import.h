// Models trained elsewhere, converted into ours: pytorch/examples' fast_neural_style TransformerNet as
// PyTorch saved it (`torch.save(net.state_dict())`, .pth) or as the ONNX model zoo exported it (.onnx,
// opset 8/9). They become Architecture::kPyTorchExamples models that every subcommand runs unchanged.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "nets/style_model.h"

namespace stylize {

// A network's tensors in the order its forward pass uses them, with their names in the source file.
struct NamedTensor {
  std::string name;
  torch::Tensor value;
};

// Reads MODEL.pth / .pt / .onnx and maps it onto our network (width and residual blocks taken from the
// file). info["source"] records the file's name, format, size and fingerprint. Throws Error naming the
// file and what was found when it is not that network.
StyleModel importModel(const std::filesystem::path& file);

// The parts, for tests and for `stylize import`'s messages:
// a .pth state_dict's floating-point tensors by name. LibTorch's unpickler first; where it cannot read the
// file (the legacy format of 2017's files, an OrderedDict it returns as None) PyTorch's own torch.load in a
// Python child process ($STYLIZE_PYTHON, else /usr/bin/python3, else python3 on PATH).
std::vector<NamedTensor> readPthStateDict(const std::filesystem::path& file);
// An ONNX graph's Conv and InstanceNormalization parameters in graph order (the zoo's names are numbers);
// throws when the graph is not the pytorch/examples network (zero-padded convs, a different layer order).
std::vector<NamedTensor> readOnnxParameters(const std::filesystem::path& file);
bool onnxSupported();  // built with libonnx-dev

}  // namespace stylize
