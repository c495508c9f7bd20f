// libFuzzer target: the image reader wrapper (data/image.cpp: OpenCV's decoders, EXIF orientation, alpha,
// 16-bit and float depths, the pixel limit) must give a [3, H, W] image in [0, 1] or throw one Error.
// tools/fuzz runs it.
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/error.h"
#include "data/image.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // 4 megapixels: the limit keeps the fuzzer's memory bounded, and is what it checks.
    const torch::Tensor image =
        stylize::decodeImage(std::string(reinterpret_cast<const char*>(data), size), "fuzz", 4'000'000);
    if (image.dim() != 3 || image.size(0) != 3 || image.size(1) < 1 || image.size(2) < 1) __builtin_trap();
    if (image.size(1) * image.size(2) > 4'000'000) __builtin_trap();
    if (!(image.min().item<float>() >= 0 && image.max().item<float>() <= 1)) __builtin_trap();
  } catch (const stylize::Error&) {
  }
  return 0;
}
