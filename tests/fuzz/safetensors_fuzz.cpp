// libFuzzer target: the safetensors reader must turn any bytes into tensors or one Error, never a crash,
// an out-of-bounds read or a huge allocation (ASan and UBSan watch). tools/fuzz runs it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/error.h"
#include "data/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const stylize::Safetensors file =
        stylize::parseSafetensors(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    // What was accepted must round-trip.
    const std::string again = stylize::serializeSafetensors(file);
    stylize::parseSafetensors(again, "fuzz round trip");
  } catch (const stylize::Error&) {
  }
  return 0;
}
