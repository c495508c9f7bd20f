#include "nets/compact_net.h"

namespace stylize {

CompactNetImpl::CompactNetImpl(int64_t w, int64_t blocks) {
  stem = register_module("stem", ConvLayer(3, w, 3, 2));
  in1 = register_module("in1", instanceNorm(w));
  down = register_module("down", ConvLayer(w, 4 * w, 3, 2));
  in2 = register_module("in2", instanceNorm(4 * w));
  residuals = torch::nn::Sequential();
  for (int64_t i = 0; i < blocks; ++i) residuals->push_back(ResidualBlock(4 * w));
  residuals = register_module("residuals", residuals);
  up = register_module("up", UpsampleConvLayer(4 * w, w, 3));
  in3 = register_module("in3", instanceNorm(w));
  toRgb = register_module("to_rgb", UpsampleConvLayer(w, 3, 3));
}

torch::Tensor CompactNetImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::relu(in1(stem(x)));
  y = torch::relu(in2(down(y)));
  y = residuals->forward(y);
  y = torch::relu(in3(up(y)));
  return toRgb(y);
}

}  // namespace stylize
