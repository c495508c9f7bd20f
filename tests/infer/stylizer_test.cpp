#include "infer/stylizer.h"

#include <gtest/gtest.h>

#include "data/error.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

TEST(Stylizer, StrengthBlendsAndOutputStaysInRange) {
  test::TempDir dir;
  TransformerNet net(TransformerConfig{8, 1});
  saveStyleModel(dir / "m.safetensors", net, {});
  Stylizer stylizer(dir / "m.safetensors", torch::kCPU);
  EXPECT_EQ(stylizer.name(), "m");
  const torch::Tensor image = torch::rand({3, 33, 47});
  const torch::Tensor full = stylizer(image);
  EXPECT_EQ(full.sizes(), image.sizes());
  EXPECT_GE(full.min().item<float>(), 0.0f);
  EXPECT_LE(full.max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::allclose(stylizer(image, {0.0, false}), image));
  EXPECT_TRUE(torch::allclose(stylizer(image, {0.5, false}), (image + full) / 2, 1e-5, 1e-6));
  EXPECT_EQ(stylizer(torch::rand({2, 3, 20, 20})).size(0), 2);
  EXPECT_THROW(stylizer(image, {1.5, false}), Error);
  EXPECT_THROW(Stylizer(dir / "m.safetensors", torch::kCPU, Precision::kFloat16), Error);
}

}  // namespace
}  // namespace stylize
