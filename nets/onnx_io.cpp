// ONNX files through libonnx-dev's protobuf classes. Only this file needs ONNX: without it (the LibTorch-only
// device build) the functions say so.
#include <fstream>
#include <set>

#include "data/error.h"
#include "nets/model_import.h"

#ifdef STYLIZE_HAVE_ONNX
#include <onnx/onnx_pb.h>
#endif

namespace stylize {
namespace fs = std::filesystem;

#ifndef STYLIZE_HAVE_ONNX
bool onnxSupported() { return false; }
std::vector<NamedTensor> readOnnxParameters(const fs::path& file) {
  throw Error(file.string() + ": this stylize was built without ONNX (install libonnx-dev and rebuild)");
}
#else
bool onnxSupported() { return true; }

namespace {

torch::Tensor tensorFromProto(const onnx::TensorProto& proto, const std::string& where) {
  std::vector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > (int64_t(1) << 28)) throw Error(where + ": tensor " + proto.name() + " has a bad shape");
    count *= d;
  }
  if (count > (int64_t(1) << 28)) throw Error(where + ": tensor " + proto.name() + " is too large");
  const bool half = proto.data_type() == onnx::TensorProto::FLOAT16;
  if (proto.data_type() != onnx::TensorProto::FLOAT && !half)
    throw Error(where + ": tensor " + proto.name() + " is not float32 or float16");
  if (proto.has_data_location() && proto.data_location() == onnx::TensorProto::EXTERNAL)
    throw Error(where + ": tensor " + proto.name() + " is stored in an external file, which import does not read");
  const size_t element = half ? 2 : 4;
  if (!proto.raw_data().empty()) {
    if (proto.raw_data().size() != size_t(count) * element)
      throw Error(where + ": tensor " + proto.name() + " holds " + std::to_string(proto.raw_data().size()) +
                  " bytes for shape " + c10::str(shape));
    torch::Tensor t = torch::empty(shape, half ? torch::kFloat16 : torch::kFloat32);
    std::memcpy(t.data_ptr(), proto.raw_data().data(), proto.raw_data().size());
    return t.to(torch::kFloat32);
  }
  if (half) {  // float16 without raw_data: the bit patterns in int32_data
    if (proto.int32_data_size() != count) throw Error(where + ": tensor " + proto.name() + " has the wrong size");
    torch::Tensor t = torch::empty(shape, torch::kFloat16);
    auto* bits = static_cast<uint16_t*>(t.data_ptr());
    for (int64_t i = 0; i < count; ++i) bits[i] = uint16_t(proto.int32_data(int(i)));
    return t.to(torch::kFloat32);
  }
  if (proto.float_data_size() != count) throw Error(where + ": tensor " + proto.name() + " has the wrong size");
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  std::copy(proto.float_data().begin(), proto.float_data().end(), t.data_ptr<float>());
  return t;
}

const onnx::AttributeProto* attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

}  // namespace

std::vector<NamedTensor> readOnnxParameters(const fs::path& file) {
  const std::string where = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(where + ": cannot read");
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&in)) throw Error(where + ": not an ONNX model (the protobuf does not parse)");
  const onnx::GraphProto& graph = model.graph();
  std::map<std::string, const onnx::TensorProto*> constants;
  for (const auto& init : graph.initializer()) constants[init.name()] = &init;
  for (const auto& node : graph.node())
    if (node.op_type() == "Constant" && node.output_size() == 1)
      if (const auto* value = attribute(node, "value"); value && value->has_t())
        constants[node.output(0)] = &value->t();
  auto parameter = [&](const onnx::NodeProto& node, int input) {
    if (node.input_size() <= input || !constants.count(node.input(input)))
      throw Error(where + ": " + node.op_type() + " node " + node.name() + " has no constant input " +
                  std::to_string(input) + " (a weight computed at run time is not this network)");
    return NamedTensor{node.input(input), tensorFromProto(*constants[node.input(input)], where)};
  };
  // Shape arithmetic that exporters emit around Upsample/Resize, and harmless ops on the data.
  static const std::set<std::string> ignored = {"Relu",      "Add",    "Constant", "Shape",           "Gather",
                                                "Unsqueeze", "Concat", "Cast",     "Slice",           "Mul",
                                                "Div",       "Floor",  "Identity", "ConstantOfShape", "Clip"};
  std::vector<NamedTensor> parameters;
  bool reflectPadded = false;
  int upsamples = 0;
  for (const auto& node : graph.node()) {
    const std::string& op = node.op_type();
    if (op == "Pad") {
      const auto* mode = attribute(node, "mode");
      reflectPadded = mode && mode->s() == "reflect";
      if (!reflectPadded) throw Error(where + ": has a Pad that is not reflection padding");
    } else if (op == "Conv") {
      if (const auto* pads = attribute(node, "pads"))
        for (int64_t p : pads->ints())
          if (p != 0) throw Error(where + ": has zero-padded convolutions, not pytorch/examples' reflection padding");
      if (const auto* group = attribute(node, "group"); group && group->i() != 1)
        throw Error(where + ": has grouped convolutions, not pytorch/examples' TransformerNet");
      if (!reflectPadded) throw Error(where + ": a Conv without reflection padding before it");
      reflectPadded = false;
      parameters.push_back(parameter(node, 1));
      parameters.push_back(parameter(node, 2));
    } else if (op == "InstanceNormalization") {
      if (const auto* eps = attribute(node, "epsilon"); eps && std::abs(eps->f() - 1e-5f) > 1e-9f)
        throw Error(where + ": instance norm epsilon " + std::to_string(eps->f()) + ", not PyTorch's 1e-5");
      parameters.push_back(parameter(node, 1));
      parameters.push_back(parameter(node, 2));
    } else if (op == "Upsample" || op == "Resize") {
      const auto* mode = attribute(node, "mode");
      if (mode && mode->s() != "nearest") throw Error(where + ": upsamples with " + mode->s() + ", not nearest");
      ++upsamples;
    } else if (!ignored.count(op)) {
      throw Error(where + ": has a " + op + " layer, which pytorch/examples' TransformerNet does not have");
    }
  }
  if (upsamples != 2)
    throw Error(where + ": " + std::to_string(upsamples) + " upsampling layers where pytorch/examples' network has 2");
  return parameters;
}
#endif

}  // namespace stylize
