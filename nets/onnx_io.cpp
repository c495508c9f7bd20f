// ONNX files through libonnx-dev's protobuf classes. Only this file needs ONNX: without it (the LibTorch-only
// device build) the functions say so.
#include <cmath>
#include <fstream>
#include <set>

#include "data/error.h"
#include "data/files.h"
#include "nets/model_import.h"

#ifdef STYLIZE_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#endif

namespace stylize {
namespace fs = std::filesystem;

#ifndef STYLIZE_HAVE_ONNX
bool onnxSupported() { return false; }
std::vector<NamedTensor> readOnnxParameters(const fs::path& file) {
  throw Error(file.string() + ": this stylize was built without ONNX (install libonnx-dev and rebuild)");
}
void exportOnnx(TransformerNet&, const fs::path& path, const OnnxExportOptions&) {
  throw Error(path.string() + ": this stylize was built without ONNX (install libonnx-dev and rebuild)");
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

namespace {

// Appends nodes and initializers to a graph; every value gets a fresh name.
class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto& graph, bool fp16) : graph_(graph), fp16_(fp16) {}

  std::string weight(const torch::Tensor& value) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(fresh("w"));
    for (int64_t d : value.sizes()) t->add_dims(d);
    const torch::Tensor data = value.detach().to(torch::kCPU, fp16_ ? torch::kFloat16 : torch::kFloat32).contiguous();
    t->set_data_type(fp16_ ? onnx::TensorProto::FLOAT16 : onnx::TensorProto::FLOAT);
    t->set_raw_data(std::string(static_cast<const char*>(data.data_ptr()), size_t(data.nbytes())));
    return t->name();
  }
  std::string scalar(float value) { return weight(torch::tensor(value)); }  // in the graph's float type
  std::string floats(const std::vector<float>& values) {                    // always float32 (Resize's scales)
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(fresh("f"));
    t->add_dims(int64_t(values.size()));
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (float v : values) t->add_float_data(v);
    return t->name();
  }
  std::string int64s(const std::vector<int64_t>& values) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(fresh("i"));
    t->add_dims(int64_t(values.size()));
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t v : values) t->add_int64_data(v);
    return t->name();
  }
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs) {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(fresh(op));
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(fresh("t"));
    return *n;
  }
  std::string op(const std::string& type, const std::vector<std::string>& inputs) {
    return node(type, inputs).output(0);
  }

 private:
  std::string fresh(const std::string& prefix) { return prefix + std::to_string(count_++); }
  onnx::GraphProto& graph_;
  bool fp16_;
  int count_ = 0;
};

void setInt(onnx::NodeProto& n, const std::string& name, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
void setInts(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
void setFloat(onnx::NodeProto& n, const std::string& name, float v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
void setString(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

// Our layers (nets/layers.h), one ONNX pattern each, reading the weights by parameter name.
class NetworkWriter {
 public:
  NetworkWriter(GraphBuilder& g, TransformerNet& net) : g_(g), params_(net->named_parameters()) {}

  std::string reflectPad(const std::string& x, const std::string& pads) {
    onnx::NodeProto& n = g_.node("Pad", {x, pads});
    setString(n, "mode", "reflect");
    return n.output(0);
  }
  std::string conv(const std::string& x, const std::string& prefix, int64_t stride) {  // ConvLayer
    const torch::Tensor& w = param(prefix + ".conv.weight");
    const int64_t k = w.size(2), p = k / 2;
    const std::string padded = reflectPad(x, g_.int64s({0, 0, p, p, 0, 0, p, p}));
    onnx::NodeProto& n = g_.node("Conv", {padded, g_.weight(w), g_.weight(param(prefix + ".conv.bias"))});
    setInts(n, "kernel_shape", {k, k});
    setInts(n, "strides", {stride, stride});
    return n.output(0);
  }
  std::string norm(const std::string& x, const std::string& prefix) {  // instanceNorm(): PyTorch's eps
    onnx::NodeProto& n =
        g_.node("InstanceNormalization", {x, g_.weight(param(prefix + ".weight")), g_.weight(param(prefix + ".bias"))});
    setFloat(n, "epsilon", 1e-5f);
    return n.output(0);
  }
  std::string relu(const std::string& x) { return g_.op("Relu", {x}); }
  std::string residual(const std::string& x, const std::string& prefix) {
    const std::string y = relu(norm(conv(x, prefix + ".conv1", 1), prefix + ".in1"));
    return g_.op("Add", {x, norm(conv(y, prefix + ".conv2", 1), prefix + ".in2")});
  }
  // UpsampleConvLayer: what its phase decomposition computes, written plainly (nearest ×2, padded conv).
  std::string upsampleConv(const std::string& x, const std::string& prefix) {
    onnx::NodeProto& n = g_.node("Resize", {x, "", g_.floats({1, 1, 2, 2})});
    setString(n, "mode", "nearest");
    setString(n, "coordinate_transformation_mode", "asymmetric");
    setString(n, "nearest_mode", "floor");
    return conv(n.output(0), prefix + ".conv", 1);
  }

  std::string johnson(std::string y) {
    y = relu(norm(conv(y, "conv1", 1), "in1"));
    y = relu(norm(conv(y, "conv2", 2), "in2"));
    y = relu(norm(conv(y, "conv3", 2), "in3"));
    for (int i = 0; params_.find("residuals." + std::to_string(i) + ".conv1.conv.weight"); ++i)
      y = residual(y, "residuals." + std::to_string(i));
    y = relu(norm(upsampleConv(y, "deconv1"), "in4"));
    y = relu(norm(upsampleConv(y, "deconv2"), "in5"));
    return conv(y, "deconv3", 1);
  }
  std::string compact(std::string y) {  // CompactNetImpl::forward
    y = relu(norm(conv(y, "compact.stem", 2), "compact.in1"));
    y = relu(norm(conv(y, "compact.down", 2), "compact.in2"));
    for (int i = 0; params_.find("compact.residuals." + std::to_string(i) + ".conv1.conv.weight"); ++i)
      y = residual(y, "compact.residuals." + std::to_string(i));
    y = relu(norm(upsampleConv(y, "compact.up"), "compact.in3"));
    return upsampleConv(y, "compact.to_rgb");
  }

 private:
  const torch::Tensor& param(const std::string& name) {
    const torch::Tensor* p = params_.find(name);
    if (!p) throw Error("internal: the network has no parameter " + name);
    return *p;
  }
  GraphBuilder& g_;
  torch::OrderedDict<std::string, torch::Tensor> params_;
};

}  // namespace

void exportOnnx(TransformerNet& net, const fs::path& path, const OnnxExportOptions& options) {
  const TransformerConfig config = net->config();
  const bool fixed = options.fixedHeight > 0 && options.fixedWidth > 0;
  if (fixed && std::min(options.fixedHeight, options.fixedWidth) < TransformerNetImpl::kMinSide)
    throw Error("--size: at least " + std::to_string(TransformerNetImpl::kMinSide) + " pixels on each side");
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("stylize");
  model.set_model_version(1);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name("stylize_" + architectureName(config.type));
  const auto type = options.fp16 ? onnx::TensorProto::FLOAT16 : onnx::TensorProto::FLOAT;
  for (const char* name : {"input", "output"}) {
    onnx::ValueInfoProto* value = std::string(name) == "input" ? graph.add_input() : graph.add_output();
    value->set_name(name);
    auto* tensor = value->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(type);
    auto* shape = tensor->mutable_shape();
    shape->add_dim()->set_dim_param("batch");
    shape->add_dim()->set_dim_value(3);
    if (fixed) {
      shape->add_dim()->set_dim_value(options.fixedHeight);
      shape->add_dim()->set_dim_value(options.fixedWidth);
    } else {
      shape->add_dim()->set_dim_param("height");
      shape->add_dim()->set_dim_param("width");
    }
  }
  GraphBuilder g(graph, options.fp16);
  NetworkWriter layers(g, net);
  torch::NoGradGuard noGrad;
  // The picture's height and width, as int64 [2]: constants, or read from the input's shape.
  const std::string size = fixed
                               ? g.int64s({options.fixedHeight, options.fixedWidth})
                               : g.op("Slice", {g.op("Shape", {"input"}), g.int64s({2}), g.int64s({4}), g.int64s({0})});
  std::string input = "input";
  if (config.denoise > 0) {  // bilateralDenoise (nets/layers.cpp), tap by tap
    const int64_t r = kDenoiseRadius;
    const std::string padded = layers.reflectPad(input, g.int64s({0, 0, r, r, 0, 0, r, r}));
    const std::string sumChannels = g.weight(torch::ones({1, 3, 1, 1}));
    const std::string range = g.scalar(float(-0.5 / (config.denoise * config.denoise)));
    std::string sum = input, weights;
    for (int64_t dy = -r; dy <= r; ++dy)
      for (int64_t dx = -r; dx <= r; ++dx) {
        if (dx == 0 && dy == 0) continue;
        const std::string begin = g.int64s({r + dy, r + dx});
        const std::string end =
            fixed ? g.int64s({options.fixedHeight + r + dy, options.fixedWidth + r + dx}) : g.op("Add", {size, begin});
        const std::string neighbour = g.op("Slice", {padded, begin, end, g.int64s({2, 3})});
        const std::string difference = g.op("Sub", {neighbour, input});
        onnx::NodeProto& distance = g.node("Conv", {g.op("Mul", {difference, difference}), sumChannels});
        setInts(distance, "kernel_shape", {1, 1});
        const double spatial = std::exp(denoiseSpatialLogWeight(dx, dy));
        const std::string weight =
            g.op("Mul", {g.op("Exp", {g.op("Mul", {distance.output(0), range})}), g.scalar(float(spatial))});
        sum = g.op("Add", {sum, g.op("Mul", {weight, neighbour})});
        weights = weights.empty() ? g.op("Add", {weight, g.scalar(1)}) : g.op("Add", {weights, weight});
      }
    input = g.op("Div", {sum, weights});
  }
  std::string result;
  if (config.type == Architecture::kPyTorchExamples) {  // 0..255, no margin, crop the top left
    const std::string pre = layers.johnson(g.op("Mul", {input, g.scalar(255)}));
    const std::string cropped = g.op("Slice", {pre, g.int64s({0, 0}), size, g.int64s({2, 3})});
    result = g.op("Mul", {cropped, g.scalar(1.0f / 255)});
  } else {
    // TransformerNetImpl::forward: reflect by the margin plus what makes each side a multiple of 4.
    const int64_t m = TransformerNetImpl::kMargin;
    std::string pads, begin;
    if (fixed) {
      const int64_t my = std::min(m, options.fixedHeight - 1), mx = std::min(m, options.fixedWidth - 1);
      const int64_t ey = (4 - (options.fixedHeight + 2 * my) % 4) % 4, ex = (4 - (options.fixedWidth + 2 * mx) % 4) % 4;
      pads = g.int64s({0, 0, my, mx, 0, 0, my + ey, mx + ex});
      begin = g.int64s({my, mx});
    } else {  // inputs are at least kMinSide, so the margin is always m
      const std::string four = g.int64s({4, 4});
      const std::string extra =
          g.op("Mod", {g.op("Sub", {four, g.op("Mod", {g.op("Add", {size, g.int64s({2 * m, 2 * m})}), four})}), four});
      onnx::NodeProto& concat =
          g.node("Concat", {g.int64s({0, 0, m, m, 0, 0}), g.op("Add", {extra, g.int64s({m, m})})});
      setInt(concat, "axis", 0);
      pads = concat.output(0);
      begin = g.int64s({m, m});
    }
    const std::string padded = layers.reflectPad(input, pads);
    const std::string pre = config.type == Architecture::kCompact ? layers.compact(padded) : layers.johnson(padded);
    const std::string cropped = g.op("Slice", {pre, begin, g.op("Add", {size, begin}), g.int64s({2, 3})});
    // Johnson's bounded output: (tanh + 1) / 2
    result = g.op("Mul", {g.op("Add", {g.op("Tanh", {cropped}), g.scalar(1)}), g.scalar(0.5f)});
  }
  onnx::NodeProto& out = *graph.add_node();
  out.set_op_type("Identity");
  out.set_name("to_output");
  out.add_input(result);
  out.add_output("output");
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(path.string() + ": ONNX's checker refused the graph: " + std::string(e.what()).substr(0, 300));
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error(path.string() + ": cannot serialise the ONNX model");
  writeFileAtomically(path, bytes);
}
#endif

}  // namespace stylize
