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
// a .pth state_dict's floating-point tensors by name, read by PyTorch's own torch.load (weights_only) in a
// Python child process ($STYLIZE_PYTHON, else /usr/bin/python3, else python3 on PATH): LibTorch's reader
// cannot read these files (see model_import.cpp).
std::vector<NamedTensor> readPthStateDict(const std::filesystem::path& file);
// An ONNX graph's Conv and InstanceNormalization parameters in graph order (the zoo's names are numbers);
// throws when the graph is not the pytorch/examples network (zero-padded convs, a different layer order).
std::vector<NamedTensor> readOnnxParameters(const std::filesystem::path& file);
bool onnxSupported();  // built with libonnx-dev

// Writes the model as ONNX (opset 13) that other runtimes run without Stylize: OpenCV's DNN module,
// onnxruntime, onnxruntime-web. Input "input" and output "output" are [N, 3, H, W] RGB in 0..1, as Stylize's
// own; height and width are dynamic (the reflection margin and crop are computed in the graph from the
// input's shape) unless fixedHeight/fixedWidth are given, which makes every pad a constant (runtimes
// without shape arithmetic, e.g. OpenCV 4.6). The upsampling layers are written as Resize (nearest) + the
// padded conv, every architecture the same way. fp16: weights, input and output in half precision.
// Passed through ONNX's checker before the file is (atomically) written.
struct OnnxExportOptions {
  bool fp16 = false;
  int64_t fixedHeight = 0, fixedWidth = 0;  // 0: dynamic
};
void exportOnnx(TransformerNet& net, const std::filesystem::path& path, const OnnxExportOptions& options = {});

}  // namespace stylize
