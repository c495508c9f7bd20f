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
  expand = register_module("expand", torch::nn::Conv2d(torch::nn::Conv2dOptions(4 * w, 4 * w, 1)));
  in3 = register_module("in3", instanceNorm(w));
  toRgb = register_module("to_rgb", ConvLayer(w, 3 * 4, 3, 1));
  initForPixelShuffle(expand, 2);
  initForPixelShuffle(toRgb->conv, 2);
}

torch::Tensor CompactNetImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  torch::Tensor y = torch::relu(in1(stem(x)));
  y = torch::relu(in2(down(y)));
  y = residuals->forward(y);
  y = torch::relu(in3(F::pixel_shuffle(expand(y), 2)));
  return F::pixel_shuffle(toRgb(y), 2);
}

}  // namespace stylize
