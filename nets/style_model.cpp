#include "nets/style_model.h"

#include <cstdlib>

#include "data/error.h"
#include "data/files.h"
#include "data/safetensors.h"

namespace stylize {

nlohmann::json architectureJson(const TransformerConfig& config) {
  nlohmann::json json = {{"type", architectureName(config.type)}, {"width", config.width}, {"blocks", config.blocks}};
  if (config.denoise > 0) json["denoise"] = config.denoise;  // absent (as before version 4) when off
  return json;
}

TransformerConfig architectureFromJson(const nlohmann::json& arch, const std::string& where) {
  if (!arch.is_object() || !arch.contains("width") || !arch["width"].is_number_integer() || !arch.contains("blocks") ||
      !arch["blocks"].is_number_integer() || (arch.contains("type") && !arch["type"].is_string()))
    throw Error(where + ": model metadata lacks architecture.width / architecture.blocks");
  double denoise = 0;
  if (arch.contains("denoise")) {
    if (!arch["denoise"].is_number() || !(arch["denoise"].get<double>() > 0 && arch["denoise"].get<double>() <= 1))
      throw Error(where + ": architecture.denoise must be a number in (0, 1], not " + arch["denoise"].dump());
    denoise = arch["denoise"].get<double>();
  }
  try {
    return {arch["width"].get<int64_t>(), arch["blocks"].get<int64_t>(),
            parseArchitecture(arch.value("type", std::string("johnson"))), denoise};
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

VideoDefaults videoDefaults(const nlohmann::json& info, const std::string& where) {
  VideoDefaults defaults;
  if (!info.contains("video")) return defaults;
  const nlohmann::json& video = info["video"];
  if (!video.is_object()) throw Error(where + ": model metadata \"video\" must be an object, not " + video.dump());
  const auto number = [&](const char* key, double high) {
    if (!video.contains(key)) return 0.0;
    const nlohmann::json& v = video[key];
    if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() <= high))
      throw Error(where + ": video." + key + " must be a number in [0, " + (high == 1 ? "1" : "0.95") + "], not " +
                  v.dump());
    return v.get<double>();
  };
  defaults.stabilize = number("stabilize", 0.95);
  defaults.stabilizeGate = number("stabilize_gate", 1);
  return defaults;
}

nlohmann::json videoDefaultsJson(const VideoDefaults& defaults) {
  nlohmann::json json = nlohmann::json::object();
  if (defaults.stabilize > 0) json["stabilize"] = defaults.stabilize;
  if (defaults.stabilizeGate > 0) json["stabilize_gate"] = defaults.stabilizeGate;
  return json;
}

void saveStyleModel(const std::filesystem::path& path, TransformerNet& net, nlohmann::json info, bool fp16) {
  info["format"] = "stylize-transformer";
  const Architecture type = net->config().type;
  // The oldest version that holds the model, so that older builds still read what they can run.
  info["version"] = net->config().denoise > 0        ? 4
                    : type == Architecture::kJohnson ? 1
                    : type == Architecture::kCompact ? 2
                                                     : 3;
  info["architecture"] = architectureJson(net->config());
  info["dtype"] = fp16 ? "float16" : "float32";
  Safetensors file;
  for (const auto& p : net->named_parameters())
    file.tensors[p.key()] = p.value().detach().to(torch::kCPU, fp16 ? torch::kFloat16 : torch::kFloat32);
  file.metadata["stylize"] = info.dump();
  writeSafetensors(path, file);
}

std::vector<std::filesystem::path> modelFolders() {
  namespace fs = std::filesystem;
  std::vector<fs::path> folders;
  if (const char* env = std::getenv("STYLIZE_MODELS"); env && *env) {
    std::string list = env;
    for (size_t start = 0, end; start <= list.size(); start = end + 1) {
      end = std::min(list.find(':', start), list.size());
      if (end > start) folders.emplace_back(list.substr(start, end - start));
    }
  }
  if (const char* data = std::getenv("XDG_DATA_HOME"); data && *data)
    folders.push_back(fs::path(data) / "stylize" / "models");
  else if (const char* home = std::getenv("HOME"); home && *home)
    folders.push_back(fs::path(home) / ".local" / "share" / "stylize" / "models");
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    folders.push_back(exe.parent_path().parent_path() / "share" / "stylize" / "models");  // installed: bin/../share
    folders.push_back(exe.parent_path().parent_path().parent_path() / "models");          // build/tools/../../models
  }
  folders.emplace_back("/usr/share/stylize/models");
  return folders;
}

std::filesystem::path findModel(const std::string& nameOrPath) {
  namespace fs = std::filesystem;
  const fs::path given(nameOrPath);
  if (fs::exists(given) || given.has_parent_path()) return given;  // a path: used as it is
  const std::string file = given.extension() == ".safetensors" ? nameOrPath : nameOrPath + ".safetensors";
  std::string looked;
  for (const fs::path& folder : modelFolders()) {
    if (fs::is_regular_file(folder / file)) return folder / file;
    looked += (looked.empty() ? "" : ", ") + folder.string();
  }
  throw Error(nameOrPath + ": no such model file, and no " + file + " in " + looked);
}

StyleModel loadStyleModel(const std::filesystem::path& path) {
  const std::filesystem::path file = findModel(path.string());
  return parseStyleModel(readFile(file), file.string());
}

StyleModel parseStyleModel(const std::string& bytes, const std::string& where) {
  Safetensors file = parseSafetensors(bytes, where);
  const auto meta = file.metadata.find("stylize");
  if (meta == file.metadata.end()) throw Error(where + ": not a Stylize model (no \"stylize\" metadata)");
  StyleModel model;
  try {
    model.info = nlohmann::json::parse(meta->second);
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": model metadata is not valid JSON");
  }
  const auto& info = model.info;
  if (!info.is_object() || info.value("format", "") != "stylize-transformer")
    throw Error(where + ": not a Stylize model (format is not stylize-transformer)");
  if (!info.contains("version") || !info["version"].is_number_integer() ||
      info["version"].get<int>() > kStyleModelVersion)
    throw Error(where + ": model format version " + (info.contains("version") ? info["version"].dump() : "missing") +
                " is newer than this stylize understands (" + std::to_string(kStyleModelVersion) + ")");
  const TransformerConfig config =
      architectureFromJson(info.contains("architecture") ? info["architecture"] : nlohmann::json(), where);
  videoDefaults(info, where);  // validated here so that a bad value fails on load, not mid-video
  try {
    model.net = TransformerNet(config);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  torch::NoGradGuard noGrad;
  size_t used = 0;
  for (auto& p : model.net->named_parameters()) {
    auto it = file.tensors.find(p.key());
    if (it == file.tensors.end()) throw Error(where + ": missing tensor \"" + p.key() + "\"");
    const torch::Tensor& t = it->second;
    if (t.sizes() != p.value().sizes())
      throw Error(where + ": tensor \"" + p.key() + "\" has shape " + c10::str(t.sizes()) +
                  ", the architecture needs " + c10::str(p.value().sizes()));
    if (t.scalar_type() != torch::kFloat32 && t.scalar_type() != torch::kFloat16 && t.scalar_type() != torch::kBFloat16)
      throw Error(where + ": tensor \"" + p.key() + "\" has dtype " + c10::toString(t.scalar_type()) +
                  ", expected float32 or float16");
    if (!torch::isfinite(t).all().item<bool>())
      throw Error(where + ": tensor \"" + p.key() + "\" holds NaN or infinity");
    p.value().copy_(t.to(torch::kFloat32));
    ++used;
  }
  if (used != file.tensors.size()) throw Error(where + ": holds tensors this architecture does not have");
  model.net->eval();
  return model;
}

StyleModel blendStyleModels(const std::vector<BlendPart>& parts) {
  if (parts.empty()) throw Error("blend: no models given");
  double total = 0;
  for (const BlendPart& part : parts) {
    if (!(part.weight > 0)) throw Error(part.model.string() + ": blend weight must be positive");
    total += part.weight;
  }
  // The first part is the base (its metadata and architecture); the others are added to it.
  StyleModel blend = loadStyleModel(parts.front().model);
  const nlohmann::json architecture = architectureJson(blend.net->config());
  bool allHalf = blend.info.value("dtype", "") == "float16";
  torch::NoGradGuard noGrad;
  for (auto& p : blend.net->parameters()) p.mul_(parts.front().weight / total);
  for (size_t i = 1; i < parts.size(); ++i) {
    StyleModel model = loadStyleModel(parts[i].model);
    if (architectureJson(model.net->config()) != architecture)
      throw Error(parts[i].model.string() + ": architecture " + architectureJson(model.net->config()).dump() +
                  " differs from " + parts.front().model.string() + "'s " + architecture.dump() + "; cannot blend");
    const auto from = model.net->named_parameters();
    for (auto& p : blend.net->named_parameters()) p.value().add_(from[p.key()], parts[i].weight / total);
    allHalf = allHalf && model.info.value("dtype", "") == "float16";
  }
  nlohmann::json recipe = nlohmann::json::array();
  for (const BlendPart& part : parts)
    recipe.push_back({{"model", part.model.filename().string()}, {"weight", part.weight / total}});
  blend.info["blend"] = recipe;
  blend.info["dtype"] = allHalf ? "float16" : "float32";
  return blend;
}

}  // namespace stylize
