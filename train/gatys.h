// Per-image style transfer by optimisation (Gatys, Ecker & Bethge, CVPR 2016): the pixels of the output
// are the parameters, the perceptual loss is the objective. Slow, and the quality reference.
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

#include "train/perceptual_loss.h"

namespace stylize {

enum class GatysOptimizer { kLbfgs, kAdam };
enum class GatysInit { kContent, kNoise, kStyle };

struct GatysOptions {
  GatysOptimizer optimizer = GatysOptimizer::kLbfgs;
  GatysInit init = GatysInit::kContent;
  int iterations = 300;       // per scale
  double learningRate = 0.0;  // 0: 1.0 for L-BFGS, 0.02 for Adam (pixels are in [0, 1])
  int scales = 1;             // coarse-to-fine: 2 runs at half size first, then full size
  uint64_t seed = 0;
};

struct GatysProgress {
  int iteration = 0, iterations = 0;  // within the current scale
  int scale = 0, scales = 1;
  LossValues loss;
  const torch::Tensor* image = nullptr;  // current output [1, 3, H, W]
};

// content: [3, H, W] at the output size; the loss must have its style set. Returns [3, H, W] in [0, 1].
// `onIteration` is called after every iteration (Adam) or every 10 (L-BFGS, which runs them in chunks).
torch::Tensor optimizeImage(PerceptualLoss& loss, const torch::Tensor& content, const torch::Tensor& styleForInit,
                            const GatysOptions& options,
                            const std::function<void(const GatysProgress&)>& onIteration = {});

}  // namespace stylize
