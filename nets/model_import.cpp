#include "nets/model_import.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "data/error.h"
#include "data/files.h"
#include "data/safetensors.h"

extern char** environ;

namespace stylize {
namespace fs = std::filesystem;

namespace {

// PyTorch's own torch.load reads the .pth; weights_only (PyTorch ≥ 1.13) refuses pickled code, so a model
// file from the internet cannot run anything. Writes float32 safetensors.
constexpr const char* kPthConverter = R"PY(
import json, struct, sys
import torch
path, out = sys.argv[1], sys.argv[2]
try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
except TypeError:  # PyTorch before 1.13
    obj = torch.load(path, map_location="cpu")
except Exception as e:
    sys.exit("torch.load: " + str(e).splitlines()[0])
if isinstance(obj, torch.nn.Module):
    obj = obj.state_dict()
if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
    obj = obj["state_dict"]
if not isinstance(obj, dict):
    sys.exit("holds a %s, not a state_dict" % type(obj).__name__)
header, blobs, offset = {}, [], 0
for name, t in obj.items():
    if torch.is_tensor(t) and t.is_floating_point():
        data = t.detach().float().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
)PY";

std::string pythonForTorch() {
  if (const char* env = std::getenv("STYLIZE_PYTHON"); env && *env) return env;
  if (fs::exists("/usr/bin/python3")) return "/usr/bin/python3";
  return "python3";
}

// Runs PYTHON -c kPthConverter FILE OUT; returns the child's last line of stderr on failure.
std::string runConverter(const std::string& python, const fs::path& file, const fs::path& out, int* status) {
  int pipeFds[2];
  if (::pipe(pipeFds) != 0) throw Error("cannot create a pipe for the .pth converter");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[1], STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipeFds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipeFds[0]);
  std::vector<std::string> args{python, "-c", kPthConverter, file.string(), out.string()};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, python.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipeFds[1]);
  std::string output;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipeFds[0], buf, sizeof buf)) > 0;) output.append(buf, size_t(n));
  ::close(pipeFds[0]);
  if (spawned != 0) {
    *status = 127 << 8;  // as a shell reports a missing program
    return python + " not found";
  }
  ::waitpid(pid, status, 0);
  while (!output.empty() && output.back() == '\n') output.pop_back();
  const size_t lastLine = output.rfind('\n');
  return lastLine == std::string::npos ? output : output.substr(lastLine + 1);
}

// The pytorch/examples names in forward order, and ours.
struct Slot {
  std::string theirs, ours;
};
std::vector<Slot> forwardOrder(int64_t blocks) {
  std::vector<Slot> slots;
  auto layer = [&](const std::string& theirs, const std::string& ours) {
    slots.push_back({theirs + ".weight", ours + ".weight"});
    slots.push_back({theirs + ".bias", ours + ".bias"});
  };
  layer("conv1.conv2d", "conv1.conv");
  layer("in1", "in1");
  layer("conv2.conv2d", "conv2.conv");
  layer("in2", "in2");
  layer("conv3.conv2d", "conv3.conv");
  layer("in3", "in3");
  for (int64_t k = 1; k <= blocks; ++k) {
    const std::string theirs = "res" + std::to_string(k), ours = "residuals." + std::to_string(k - 1);
    layer(theirs + ".conv1.conv2d", ours + ".conv1.conv");
    layer(theirs + ".in1", ours + ".in1");
    layer(theirs + ".conv2.conv2d", ours + ".conv2.conv");
    layer(theirs + ".in2", ours + ".in2");
  }
  layer("deconv1.conv2d", "deconv1.conv.conv");
  layer("in4", "in4");
  layer("deconv2.conv2d", "deconv2.conv.conv");
  layer("in5", "in5");
  layer("deconv3.conv2d", "deconv3.conv");
  return slots;
}

// Copies `values` (in forward order) into a new network; shapes must match exactly.
TransformerNet buildNetwork(const std::vector<NamedTensor>& values, int64_t width, int64_t blocks,
                            const std::string& where) {
  const std::vector<Slot> slots = forwardOrder(blocks);
  if (values.size() != slots.size())
    throw Error(where + ": " + std::to_string(values.size()) +
                " parameter tensors where pytorch/examples' network with " + std::to_string(blocks) +
                " residual blocks has " + std::to_string(slots.size()));
  TransformerNet net(TransformerConfig{width, blocks, Architecture::kPyTorchExamples});
  auto params = net->named_parameters();
  torch::NoGradGuard noGrad;
  for (size_t i = 0; i < slots.size(); ++i) {
    torch::Tensor* target = params.find(slots[i].ours);
    if (!target) throw Error("internal: no parameter " + slots[i].ours);
    if (values[i].value.sizes() != target->sizes())
      throw Error(where + ": " + values[i].name + " has shape " + c10::str(values[i].value.sizes()) + " where " +
                  slots[i].theirs + " of a " + std::to_string(width) + "-wide network has " +
                  c10::str(target->sizes()));
    target->copy_(values[i].value.to(torch::kFloat32));
  }
  return net;
}

}  // namespace

std::vector<NamedTensor> readPthStateDict(const fs::path& file) {
  if (!fs::is_regular_file(file)) throw Error(file.string() + ": no such file");
  // LibTorch 1.13's own reader is not used: it returns None for the OrderedDict a state_dict() is, cannot
  // read the legacy format, and its zip reader reads past the end of a short file's buffer
  // (AddressSanitizer: heap-buffer-overflow in mz_zip_reader_init, on our bad-input test).
  const std::string python = pythonForTorch();
  const fs::path out = temporarySibling(fs::temp_directory_path() / "stylize-import.safetensors");
  struct RemoveOnExit {  // the converter's output is ours to delete, whatever happens
    fs::path path;
    ~RemoveOnExit() {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  } removeOut{out};
  int status = 0;
  const std::string message = runConverter(python, file, out, &status);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (message.find("No module named 'torch'") != std::string::npos || WEXITSTATUS(status) == 127)
      throw Error(file.string() + ": LibTorch cannot read this .pth and " + python +
                  " has no PyTorch to read it with (apt install python3-torch, or set STYLIZE_PYTHON)");
    throw Error(file.string() + ": " + message);
  }
  const std::map<std::string, torch::Tensor> tensors = readSafetensors(out).tensors;
  std::vector<NamedTensor> result;
  for (const auto& [name, value] : tensors) result.push_back({name, value});
  return result;
}

StyleModel importModel(const fs::path& file) {
  const std::string where = file.string();
  std::string extension = file.extension().string();
  for (char& c : extension) c = char(std::tolower(static_cast<unsigned char>(c)));
  const bool onnx = extension == ".onnx";
  if (!onnx && extension != ".pth" && extension != ".pt")
    throw Error(where + ": import reads .pth, .pt (PyTorch) or .onnx files");
  if (!fs::is_regular_file(file)) throw Error(where + ": no such file");
  std::vector<NamedTensor> ordered;
  int64_t width = 0, blocks = 0;
  if (onnx) {
    ordered = readOnnxParameters(file);
    // 6 layers before the residual blocks, 4 in each, 5 after; a weight and a bias each.
    if (ordered.size() < 22 || (ordered.size() - 22) % 8 != 0)
      throw Error(
          where + ": " + std::to_string(ordered.size() / 2) +
          " conv and instance-norm layers, which do not make pytorch/examples' network (11 + 4 per residual block)");
    blocks = int64_t(ordered.size() - 22) / 8;
  } else {
    std::map<std::string, torch::Tensor> byName;
    for (NamedTensor& t : readPthStateDict(file)) {
      std::string name = t.name;
      if (name.rfind("module.", 0) == 0) name = name.substr(7);  // saved from nn.DataParallel
      // Old PyTorch kept running statistics in instance norms; pytorch/examples deletes them before loading.
      if (name.find(".running_mean") != std::string::npos || name.find(".running_var") != std::string::npos) continue;
      byName[name] = t.value;
    }
    if (!byName.count("conv1.conv2d.weight") || !byName.count("res1.conv1.conv2d.weight")) {
      std::string found;
      for (const auto& [name, value] : byName) found += (found.empty() ? "" : ", ") + name;
      if (found.size() > 200) found = found.substr(0, 200) + "...";
      throw Error(where + ": not pytorch/examples' TransformerNet (no conv1.conv2d.weight / res1.*); it holds: " +
                  (found.empty() ? "no tensors" : found));
    }
    while (byName.count("res" + std::to_string(blocks + 1) + ".conv1.conv2d.weight")) ++blocks;
    for (const Slot& slot : forwardOrder(blocks)) {
      auto it = byName.find(slot.theirs);
      if (it == byName.end()) throw Error(where + ": lacks " + slot.theirs + " of pytorch/examples' TransformerNet");
      ordered.push_back({slot.theirs, it->second});
      byName.erase(it);
    }
    if (!byName.empty())
      throw Error(where + ": holds " + byName.begin()->first +
                  ", which pytorch/examples' TransformerNet does not have");
  }
  const torch::Tensor& first = ordered.front().value;
  if (first.dim() != 4 || first.size(1) != 3 || first.size(2) != 9)
    throw Error(where + ": the first layer is " + c10::str(first.sizes()) + ", not a 9x9 conv from RGB");
  width = first.size(0);
  if (width < 4 || width > 256) throw Error(where + ": a first layer " + std::to_string(width) + " channels wide");
  StyleModel model;
  model.net = buildNetwork(ordered, width, blocks, where);
  model.net->eval();
  const std::string bytes = readFile(file);
  model.info["source"] = {{"file", file.filename().string()},
                          {"format", onnx ? "onnx" : "pth"},
                          {"bytes", bytes.size()},
                          {"fingerprint", fingerprint(bytes)},
                          {"network", "pytorch/examples fast_neural_style TransformerNet"}};
  return model;
}

}  // namespace stylize
