#include "data/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "data/error.h"
#include "data/files.h"

namespace stylize {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

torch::ScalarType dtypeFromName(const std::string& name, const std::string& where) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  throw Error(where + ": unsupported dtype \"" + name + "\"");
}

const char* nameFromDtype(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  throw Error(std::string("safetensors: cannot store dtype ") + c10::toString(type));
}

uint64_t readLittleEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

struct Entry {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parseEntry(const std::string& name, const nlohmann::json& info, uint64_t dataSize, const std::string& source) {
  const std::string where = source + ": tensor \"" + name + "\"";
  if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
    throw Error(where + ": entry must be an object with dtype, shape and data_offsets");
  if (!info["dtype"].is_string()) throw Error(where + ": dtype must be a string");
  Entry e{name, dtypeFromName(info["dtype"].get<std::string>(), where), {}, 0, 0};

  const auto& shape = info["shape"];
  if (!shape.is_array()) throw Error(where + ": shape must be an array");
  uint64_t numel = 1;
  for (const auto& dim : shape) {
    if (!dim.is_number_unsigned()) throw Error(where + ": shape has a negative or non-integer dimension");
    const uint64_t d = dim.get<uint64_t>();
    if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / d / 8) throw Error(where + ": shape overflows");
    numel *= d;
    e.shape.push_back(static_cast<int64_t>(d));
  }

  const auto& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw Error(where + ": data_offsets must be two non-negative integers");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.begin > e.end || e.end > dataSize)
    throw Error(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                "] lie outside the " + std::to_string(dataSize) + " data bytes (truncated file?)");
  const uint64_t expected = numel * c10::elementSize(e.dtype);
  if (e.end - e.begin != expected)
    throw Error(where + ": holds " + std::to_string(e.end - e.begin) + " bytes, dtype and shape need " +
                std::to_string(expected));
  return e;
}

}  // namespace

Safetensors parseSafetensors(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 8)
    throw Error(source + ": too short for a safetensors file (" + std::to_string(bytes.size()) + " bytes)");
  const uint64_t headerSize = readLittleEndian64(bytes.data());
  if (headerSize > kMaxHeaderBytes || headerSize > bytes.size() - 8)
    throw Error(source + ": header length " + std::to_string(headerSize) +
                " exceeds the file (not safetensors, or truncated)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(headerSize));
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": header is not valid JSON");
  }
  if (!header.is_object()) throw Error(source + ": header is not a JSON object");

  const uint64_t dataOffset = 8 + headerSize;
  const uint64_t dataSize = bytes.size() - dataOffset;
  Safetensors file;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw Error(source + ": __metadata__ must be an object of strings");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) throw Error(source + ": __metadata__ value \"" + key + "\" is not a string");
        file.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    entries.push_back(parseEntry(name, info, dataSize, source));
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].begin < entries[i - 1].end)
      throw Error(source + ": tensors \"" + entries[i - 1].name + "\" and \"" + entries[i].name + "\" overlap");

  for (const auto& e : entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), bytes.data() + dataOffset + e.begin, e.end - e.begin);
    file.tensors.emplace(e.name, std::move(t));
  }
  return file;
}

Safetensors readSafetensors(const std::filesystem::path& path) {
  return parseSafetensors(readFile(path), path.string());
}

std::string serializeSafetensors(const Safetensors& file) {
  nlohmann::json header = nlohmann::json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t size = t.numel() * t.element_size();
    header[name] = {{"dtype", nameFromDtype(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + size}}};
    offset += size;
    data.push_back(std::move(t));
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the reference writer does

  std::string out;
  out.reserve(8 + json.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((static_cast<uint64_t>(json.size()) >> (8 * i)) & 0xff));
  out += json;
  for (const auto& t : data) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void writeSafetensors(const std::filesystem::path& path, const Safetensors& file) {
  writeFileAtomically(path, serializeSafetensors(file));
}

}  // namespace stylize
