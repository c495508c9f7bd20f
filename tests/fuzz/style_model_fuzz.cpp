// libFuzzer target: the model loader (safetensors, the "stylize" metadata JSON, architecture, every tensor's
// name, shape, dtype and finiteness) must accept a valid model or throw one Error, and a model it accepts
// must run. tools/fuzz runs it.
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/error.h"
#include "nets/style_model.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    stylize::StyleModel model =
        stylize::parseStyleModel(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    torch::NoGradGuard noGrad;
    model.net->eval();
    const torch::Tensor out = model.net->forward(torch::rand({1, 3, 20, 24}));
    if (out.sizes() != torch::IntArrayRef({1, 3, 20, 24})) __builtin_trap();
  } catch (const stylize::Error&) {
  }
  return 0;
}
