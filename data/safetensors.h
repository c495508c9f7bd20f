// The safetensors format (8-byte little-endian header length, JSON header, raw tensor bytes), read and
// written here so that every offset, dtype and shape is validated before a byte is trusted.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>

namespace stylize {

struct Safetensors {
  std::map<std::string, torch::Tensor> tensors;  // CPU, contiguous, owned (not views of the file)
  std::map<std::string, std::string> metadata;   // the optional "__metadata__" string map
};

// Throws Error("<source>: ...") on anything malformed: short or truncated data, a header that is not a
// JSON object, an unknown dtype, a negative or overflowing shape, offsets outside the data or
// overlapping, a byte count that does not match dtype × shape.
Safetensors parseSafetensors(const std::string& bytes, const std::string& source);
Safetensors readSafetensors(const std::filesystem::path& path);

std::string serializeSafetensors(const Safetensors& file);
// Atomic: a temporary file renamed into place.
void writeSafetensors(const std::filesystem::path& path, const Safetensors& file);

}  // namespace stylize
