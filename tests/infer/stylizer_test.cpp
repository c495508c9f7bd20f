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

// A flat frame has no picture to stylize: the network would paint it as a field of an arbitrary colour
// (its instance norms blow rounding noise up to full contrast). Black stays black, a plain colour stays
// itself, the end of a fade fades, and pictures with contrast are the network's output exactly.
TEST(Stylizer, FlatFramesKeepTheirColourAndPicturesAreUntouched) {
  test::TempDir dir;
  torch::manual_seed(5);
  TransformerNet net(TransformerConfig{8, 1});
  saveStyleModel(dir / "m.safetensors", net, {});
  Stylizer stylizer(dir / "m.safetensors", torch::kCPU);
  const torch::Tensor black = torch::zeros({3, 32, 40}), grey = torch::full({3, 32, 40}, 0.6);
  EXPECT_TRUE(torch::equal(stylizer(black), black));
  EXPECT_TRUE(torch::equal(stylizer(grey), grey));
  // Sensor noise of under one 8-bit level on black is still black.
  const torch::Tensor noisyBlack = (torch::rand({3, 32, 40}) * 2.0 / 255).clamp(0, 1);
  EXPECT_LT((stylizer(noisyBlack) - noisyBlack).abs().max().item<float>(), 1e-6);

  const torch::Tensor picture = torch::rand({1, 3, 32, 40});
  torch::Tensor expected;
  {
    torch::NoGradGuard noGrad;
    expected = loadStyleModel(dir / "m.safetensors").net->forward(picture).clamp(0, 1);
  }
  EXPECT_TRUE(torch::allclose(stylizer(picture), expected, 1e-5, 1e-6));
  // In a batch each frame gets its own weight: the flat one is kept, the picture stylized.
  const torch::Tensor batch = stylizer(torch::cat({picture, black.unsqueeze(0)}));
  EXPECT_TRUE(torch::allclose(batch[0], expected[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(batch[1], black));
  // A fade to black (this picture's luma deviation is 0.19): at a fifth of its contrast it is still fully
  // stylized, at a hundredth it is the input, and the share of the style only shrinks as it fades.
  float previous = 1;
  for (const double level : {1.0, 0.2, 0.12, 0.08, 0.05, 0.02, 0.01}) {
    const torch::Tensor faded = picture * level, out = stylizer(faded);
    const torch::Tensor full = loadStyleModel(dir / "m.safetensors").net->forward(faded).clamp(0, 1).detach();
    const float share = ((out - faded).abs().sum() / (full - faded).abs().sum()).item<float>();
    EXPECT_LE(share, previous + 1e-4) << "level " << level;
    previous = share;
    if (level >= 0.2) {
      EXPECT_NEAR(share, 1, 1e-4) << "level " << level;
    }
    if (level <= 0.01) {
      EXPECT_NEAR(share, 0, 1e-6) << "level " << level;
    }
  }
}

}  // namespace
}  // namespace stylize
