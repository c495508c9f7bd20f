#include "data/color.h"

#include <torch/torch.h>

namespace stylize {

torch::Tensor transferLuminance(const torch::Tensor& stylized, const torch::Tensor& content) {
  // BT.601 full-range YCbCr: Y from the stylized image, Cb/Cr from the content.
  auto luma = [](const torch::Tensor& x) {
    return 0.299 * x.select(-3, 0) + 0.587 * x.select(-3, 1) + 0.114 * x.select(-3, 2);
  };
  const torch::Tensor y = luma(stylized);
  const torch::Tensor cb = (content.select(-3, 2) - luma(content)) * 0.564;
  const torch::Tensor cr = (content.select(-3, 0) - luma(content)) * 0.713;
  const torch::Tensor r = y + 1.403 * cr;
  const torch::Tensor g = y - 0.344 * cb - 0.714 * cr;
  const torch::Tensor b = y + 1.773 * cb;
  return torch::stack({r, g, b}, -3).clamp(0, 1);
}

}  // namespace stylize
