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
  if (!residuals->is_empty()) y = residuals->forward(y);  // Sequential refuses to run empty
  y = torch::relu(in3(up(y)));
  return toRgb(y);
}

fused::Activation CompactNetImpl::forwardFused(const torch::Tensor& padded) {
  using fused::Pad;
  const auto blocks = residuals->children();
  torch::Tensor y = fused::normalizePadded({fused::convolve(stem->conv, padded)}, in1, true, {}, 1, Pad::kReflect);
  y = fused::normalizePadded({fused::convolve(down->conv, y)}, in2, true, {}, 1,
                             blocks.empty() ? Pad::kReplicate : Pad::kReflect);
  for (size_t i = 0; i < blocks.size(); ++i)
    y = blocks[i]->as<ResidualBlockImpl>()->forwardFused(y, i + 1 == blocks.size() ? Pad::kReplicate : Pad::kReflect);
  y = fused::normalizePadded(up->forwardFused(y), in3, true, {}, 1, Pad::kReplicate);
  return toRgb->forwardFused(y);
}

}  // namespace stylize
