#include "nets/vgg.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/error.h"
#include "data/safetensors.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

constexpr int kConvIndex[] = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34};
using test::randomVgg;

std::string loadError(const Safetensors& file, const test::TempDir& dir) {
  writeSafetensors(dir / "vgg.safetensors", file);
  try {
    Vgg19::load(dir / "vgg.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Vgg19, LoadsAPrefixAndReportsItsRange) {
  test::TempDir dir;
  writeSafetensors(dir / "vgg.safetensors", randomVgg(4));
  const Vgg19 vgg = Vgg19::load(dir / "vgg.safetensors");
  EXPECT_EQ(vgg.loadedConvLayers(), 4);
  EXPECT_EQ(vgg.loadedRange(), "conv1_1..conv2_2");
  EXPECT_TRUE(vgg.hasLayer("relu2_2"));
  EXPECT_TRUE(vgg.hasLayer("pool2"));
  EXPECT_FALSE(vgg.hasLayer("relu3_1"));
}

TEST(Vgg19, MissingLayerErrorNamesLayerAndFile) {
  test::TempDir dir;
  writeSafetensors(dir / "vgg.safetensors", randomVgg(4));
  const Vgg19 vgg = Vgg19::load(dir / "vgg.safetensors");
  try {
    vgg.requireLayers({"relu1_1", "relu4_2"});
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("vgg.safetensors has only conv1_1..conv2_2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("relu4_2 needs conv4_2 (features.21.weight)"), std::string::npos) << msg;
  }
  EXPECT_THROW(vgg.requireLayers({"relu9_9"}), Error);
}

TEST(Vgg19, RejectsMismatchedShapesGapsAndMissingBias) {
  test::TempDir dir;
  Safetensors wrongShape = randomVgg(2);
  wrongShape.tensors["features.2.weight"] = torch::zeros({64, 32, 3, 3});
  EXPECT_NE(loadError(wrongShape, dir).find("conv1_2 (features.2.weight): shape [64, 32, 3, 3]"), std::string::npos);

  Safetensors gap = randomVgg(4);
  gap.tensors.erase("features.2.weight");
  gap.tensors.erase("features.2.bias");
  EXPECT_NE(loadError(gap, dir).find("has conv2_1 but not conv1_2"), std::string::npos) << loadError(gap, dir);

  Safetensors noBias = randomVgg(2);
  noBias.tensors.erase("features.2.bias");
  EXPECT_NE(loadError(noBias, dir).find("weight and bias must both be present"), std::string::npos);

  Safetensors ints = randomVgg(1);
  ints.tensors["features.0.weight"] = torch::zeros({64, 3, 3, 3}, torch::kInt32);
  EXPECT_NE(loadError(ints, dir).find("not floating point"), std::string::npos);

  EXPECT_NE(loadError(Safetensors{}, dir).find("no VGG19 layers"), std::string::npos);
}

TEST(Vgg19, ForwardGivesTapShapesAndMatchesAPlainImplementation) {
  test::TempDir dir;
  const Safetensors file = randomVgg(4);
  writeSafetensors(dir / "vgg.safetensors", file);
  const Vgg19 vgg = Vgg19::load(dir / "vgg.safetensors");
  const torch::Tensor x = torch::rand({2, 3, 32, 48});
  const auto out = vgg.forward(x, {"relu1_1", "conv2_1", "relu2_2", "pool2"});
  EXPECT_EQ(out.at("relu1_1").sizes(), torch::IntArrayRef({2, 64, 32, 48}));
  EXPECT_EQ(out.at("relu2_2").sizes(), torch::IntArrayRef({2, 128, 16, 24}));
  EXPECT_EQ(out.at("pool2").sizes(), torch::IntArrayRef({2, 128, 8, 12}));
  EXPECT_LT(out.at("conv2_1").min().item<float>(), 0.0f);  // pre-activation keeps negatives

  namespace F = torch::nn::functional;
  auto conv = [&](const torch::Tensor& h, int i) {
    const std::string p = "features." + std::to_string(kConvIndex[i]);
    return F::conv2d(h, file.tensors.at(p + ".weight"),
                     F::Conv2dFuncOptions().bias(file.tensors.at(p + ".bias")).padding(1));
  };
  torch::Tensor h = (x - torch::tensor({0.485, 0.456, 0.406}).view({1, 3, 1, 1})) /
                    torch::tensor({0.229, 0.224, 0.225}).view({1, 3, 1, 1});
  h = torch::relu(conv(h, 0));
  EXPECT_TRUE(torch::allclose(out.at("relu1_1"), h, 1e-4, 1e-5));
  h = F::max_pool2d(torch::relu(conv(h, 1)), F::MaxPool2dFuncOptions(2));
  h = torch::relu(conv(conv(h, 2).relu(), 3));
  EXPECT_TRUE(torch::allclose(out.at("relu2_2"), h, 1e-4, 1e-5));
}

TEST(Vgg19, NormalizationMakesLayerMeansOneAndOnlyRescales) {
  test::TempDir dir;
  writeSafetensors(dir / "vgg.safetensors", randomVgg(3));
  Vgg19 vgg = Vgg19::load(dir / "vgg.safetensors");
  std::vector<torch::Tensor> photos;
  for (int i = 0; i < 4; ++i) photos.push_back(torch::rand({3, 32, 32}));
  const ChannelMeans means = vgg.channelMeans(photos);
  const torch::Tensor before = vgg.forward(photos[0].unsqueeze(0), {"relu2_1"}).at("relu2_1");
  vgg.normalize(means);
  for (const auto& [layer, m] : vgg.channelMeans(photos)) EXPECT_NEAR(m.mean().item<float>(), 1.0f, 1e-3) << layer;
  // Same network up to one factor per layer.
  const torch::Tensor normalized = vgg.forward(photos[0].unsqueeze(0), {"relu2_1"}).at("relu2_1");
  EXPECT_TRUE(torch::allclose(normalized * means.at("conv2_1").mean(), before, 1e-3, 1e-4));
}

TEST(Vgg19, NormalizedLoaderCachesChannelMeans) {
  test::TempDir dir;
  writeSafetensors(dir / "vgg.safetensors", randomVgg(2));
  int calls = 0;
  auto photos = [&] {
    ++calls;
    return std::vector<torch::Tensor>{torch::rand({3, 16, 16})};
  };
  const Vgg19 a = loadNormalizedVgg19(dir / "vgg.safetensors", dir / "cache", photos);
  const Vgg19 b = loadNormalizedVgg19(dir / "vgg.safetensors", dir / "cache", photos);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(a.normalized() && b.normalized());
  const torch::Tensor x = torch::rand({1, 3, 16, 16});
  EXPECT_TRUE(torch::allclose(a.forward(x, {"relu1_2"}).at("relu1_2"), b.forward(x, {"relu1_2"}).at("relu1_2")));
}

TEST(Vgg19, SharedWeightsAreThePartialGenuineNetwork) {
  STYLIZE_REQUIRE_SHARED(test::sharedVgg());
  const Vgg19 vgg = Vgg19::load(test::sharedVgg());
  EXPECT_EQ(vgg.loadedRange(), "conv1_1..conv3_4");
  EXPECT_TRUE(vgg.hasLayer("relu3_4"));
  EXPECT_FALSE(vgg.hasLayer("relu4_1"));
  // Caffe scale: relu3_4 activations on a photo-like input are large.
  const torch::Tensor x = torch::rand({1, 3, 64, 64});
  EXPECT_GT(vgg.forward(x, {"relu3_4"}).at("relu3_4").mean().item<float>(), 10.0f);
}

}  // namespace
}  // namespace stylize
