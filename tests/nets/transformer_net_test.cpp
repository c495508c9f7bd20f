#include "nets/transformer_net.h"

#include <gtest/gtest.h>

#include "data/error.h"
#include "data/safetensors.h"
#include "nets/style_model.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

TEST(TransformerNet, AnySizeAtLeastTheMinimumKeepsItsShape) {
  TransformerNet net(TransformerConfig{8, 1});
  torch::NoGradGuard noGrad;
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{16, 16}, {17, 23}, {55, 97}, {64, 48}, {31, 16}}) {
    const torch::Tensor y = net->forward(torch::rand({2, 3, h, w}));
    EXPECT_EQ(y.sizes(), torch::IntArrayRef({2, 3, h, w})) << h << "x" << w;
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  }
}

TEST(TransformerNet, TinyInputsAreRejectedWithAClearMessage) {
  TransformerNet net(TransformerConfig{8, 1});
  try {
    net->forward(torch::rand({1, 3, 15, 40}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("40x15 is too small"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TransformerNet(TransformerConfig{2, 1}), Error);
}

TEST(TransformerNet, DefaultIsJohnsonsArchitecture) {
  TransformerNet net;
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  EXPECT_EQ(params, 1679235);  // the pytorch/examples TransformerNet has the same count
  EXPECT_EQ(net->named_parameters().size(), 62u);
}

// Every conv of both architectures pads by reflection, never with zeros (zero padding leaves a dark frame
// around every stylized image). Checked on the modules themselves: a whole random network cannot show it on
// a flat image, since its instance norms divide float rounding noise by sqrt(eps) nine times over, and how
// much noise a conv leaves on a constant input depends on the CPU's kernels (flat on one x86-64 model,
// 0.4 of the output range on another).
void expectNoZeroPaddedConvs(TransformerNet& net) {
  int convs = 0;
  for (const auto& module : net->modules(/*include_self=*/false))
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      // An unpadded conv shrinks a 21×21 input to (21 − k) / s + 1; any zero padding would keep more.
      ++convs;
      const int64_t k = conv->options.kernel_size()->at(0), s = conv->options.stride()->at(0);
      torch::NoGradGuard noGrad;
      const torch::Tensor y = conv->forward(torch::zeros({1, conv->options.in_channels(), 21, 21}));
      EXPECT_EQ(y.size(2), (21 - k) / s + 1) << "a conv pads with zeros";
    }
  EXPECT_GT(convs, 5);
}

TEST(TransformerNet, EveryConvPadsByReflection) {
  TransformerNet johnson(TransformerConfig{8, 2});
  expectNoZeroPaddedConvs(johnson);
  TransformerNet compact(TransformerConfig{8, 3, Architecture::kCompact});
  expectNoZeroPaddedConvs(compact);
}

// One layer has no normalisation to amplify rounding: a flat image must come out flat to float precision,
// borders included, on any CPU.
TEST(Layers, PaddedConvsKeepFlatImagesFlat) {
  torch::NoGradGuard noGrad;
  const torch::Tensor flat = torch::full({1, 3, 37, 50}, 0.6);
  auto spread = [](const torch::Tensor& y) {
    return ((y - y.mean({2, 3}, true)).abs().max() / (y.abs().max() + 1e-6)).item<float>();
  };
  EXPECT_LT(spread(ConvLayer(3, 8, 9, 1)->forward(flat)), 1e-5);
  EXPECT_LT(spread(ConvLayer(3, 8, 3, 2)->forward(flat)), 1e-5);
  EXPECT_LT(spread(UpsampleConvLayer(3, 8, 3)->forward(flat)), 1e-5);
}

TEST(StyleModel, RoundTripsWeightsAndMetadataInBothPrecisions) {
  test::TempDir dir;
  TransformerNet net(TransformerConfig{8, 2});
  const torch::Tensor x = torch::rand({1, 3, 32, 32});
  torch::NoGradGuard noGrad;
  net->eval();
  const torch::Tensor expected = net->forward(x);
  for (bool fp16 : {false, true}) {
    const auto path = dir / (fp16 ? "half.safetensors" : "full.safetensors");
    saveStyleModel(path, net, {{"style", {{"file", "starry.jpg"}}}}, fp16);
    StyleModel model = loadStyleModel(path);
    EXPECT_EQ(model.info["architecture"]["width"], 8);
    EXPECT_EQ(model.info["architecture"]["blocks"], 2);
    EXPECT_EQ(model.info["style"]["file"], "starry.jpg");
    EXPECT_EQ(model.info["dtype"], fp16 ? "float16" : "float32");
    EXPECT_TRUE(torch::allclose(model.net->forward(x), expected, fp16 ? 5e-2 : 1e-5, fp16 ? 5e-2 : 1e-6));
  }
  EXPECT_LT(std::filesystem::file_size(dir / "half.safetensors"),
            std::filesystem::file_size(dir / "full.safetensors") * 0.6);
}

std::string loadError(const std::filesystem::path& path) {
  try {
    loadStyleModel(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(StyleModel, MalformedModelsAreRejected) {
  test::TempDir dir;
  TransformerNet net(TransformerConfig{8, 1});
  saveStyleModel(dir / "ok.safetensors", net, {});
  Safetensors file = readSafetensors(dir / "ok.safetensors");

  Safetensors noMeta = file;
  noMeta.metadata.clear();
  writeSafetensors(dir / "m.safetensors", noMeta);
  EXPECT_NE(loadError(dir / "m.safetensors").find("not a Stylize model"), std::string::npos);

  Safetensors future = file;
  future.metadata["stylize"] = R"({"format":"stylize-transformer","version":99,"architecture":{"width":8,"blocks":1}})";
  writeSafetensors(dir / "m.safetensors", future);
  EXPECT_NE(loadError(dir / "m.safetensors").find("version 99 is newer"), std::string::npos);

  Safetensors wrongArch = file;
  wrongArch.metadata["stylize"] =
      R"({"format":"stylize-transformer","version":1,"architecture":{"width":16,"blocks":1}})";
  writeSafetensors(dir / "m.safetensors", wrongArch);
  EXPECT_NE(loadError(dir / "m.safetensors").find("has shape"), std::string::npos) << loadError(dir / "m.safetensors");

  Safetensors missing = file;
  missing.tensors.erase("conv1.conv.weight");
  writeSafetensors(dir / "m.safetensors", missing);
  EXPECT_NE(loadError(dir / "m.safetensors").find("missing tensor \"conv1.conv.weight\""), std::string::npos);

  Safetensors nan = file;
  nan.tensors["in1.bias"] = torch::full_like(nan.tensors["in1.bias"], NAN);
  writeSafetensors(dir / "m.safetensors", nan);
  EXPECT_NE(loadError(dir / "m.safetensors").find("NaN"), std::string::npos);

  Safetensors extra = file;
  extra.tensors["spare"] = torch::zeros({1});
  writeSafetensors(dir / "m.safetensors", extra);
  EXPECT_NE(loadError(dir / "m.safetensors").find("does not have"), std::string::npos);
}

TEST(StyleModel, VideoDefaultsRoundTripAndBadOnesAreRejectedOnLoad) {
  test::TempDir dir;
  TransformerNet net(TransformerConfig{8, 1});
  saveStyleModel(dir / "plain.safetensors", net, {});
  const VideoDefaults none = videoDefaults(loadStyleModel(dir / "plain.safetensors").info, "plain");
  EXPECT_EQ(none.stabilize, 0);
  EXPECT_EQ(none.stabilizeGate, 0);

  saveStyleModel(dir / "steady.safetensors", net, {{"video", videoDefaultsJson({0.8, 0.06})}});
  const VideoDefaults steady = videoDefaults(loadStyleModel(dir / "steady.safetensors").info, "steady");
  EXPECT_DOUBLE_EQ(steady.stabilize, 0.8);
  EXPECT_DOUBLE_EQ(steady.stabilizeGate, 0.06);

  Safetensors file = readSafetensors(dir / "plain.safetensors");
  const auto rejected = [&](const std::string& video) {
    Safetensors bad = file;
    bad.metadata["stylize"] =
        R"({"format":"stylize-transformer","version":1,"architecture":{"width":8,"blocks":1},"video":)" + video + "}";
    writeSafetensors(dir / "bad.safetensors", bad);
    return loadError(dir / "bad.safetensors");
  };
  EXPECT_NE(rejected(R"({"stabilize":1.5})").find("video.stabilize must be a number in [0, 0.95], not 1.5"),
            std::string::npos)
      << rejected(R"({"stabilize":1.5})");
  EXPECT_NE(rejected(R"({"stabilize":0.5,"stabilize_gate":"x"})").find("video.stabilize_gate"), std::string::npos);
  EXPECT_NE(rejected("7").find("must be an object"), std::string::npos);
  EXPECT_EQ(rejected("{}"), "") << "no recommendation is fine";
}

TEST(StyleModel, BlendIsTheWeightedMeanOfTheWeightsAndRecordsItsRecipe) {
  test::TempDir dir;
  TransformerNet a(TransformerConfig{8, 1}), b(TransformerConfig{8, 1}), other(TransformerConfig{8, 2});
  saveStyleModel(dir / "a.safetensors", a, {{"style", {{"file", "starry.jpg"}}}});
  saveStyleModel(dir / "b.safetensors", b, {{"style", {{"file", "wave.jpg"}}}});
  saveStyleModel(dir / "other.safetensors", other, {});
  StyleModel mix = blendStyleModels({{dir / "a.safetensors", 3}, {dir / "b.safetensors", 1}});
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : mix.net->named_parameters())
    EXPECT_TRUE(torch::allclose(p.value(), 0.75 * pa[p.key()] + 0.25 * pb[p.key()], 1e-5, 1e-6)) << p.key();
  EXPECT_EQ(mix.info["style"]["file"], "starry.jpg");
  ASSERT_EQ(mix.info["blend"].size(), 2u);
  EXPECT_EQ(mix.info["blend"][1]["model"], "b.safetensors");
  EXPECT_DOUBLE_EQ(mix.info["blend"][1]["weight"].get<double>(), 0.25);
  EXPECT_EQ(mix.info["dtype"], "float32");

  try {
    blendStyleModels({{dir / "a.safetensors", 1}, {dir / "other.safetensors", 1}});
    ADD_FAILURE() << "blended different architectures";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other.safetensors: architecture"), std::string::npos) << e.what();
  }
  EXPECT_THROW(blendStyleModels({{dir / "a.safetensors", 0}, {dir / "b.safetensors", 1}}), Error);
}

}  // namespace
}  // namespace stylize

namespace stylize {
namespace {

TEST(UpsampleConvLayer, PhaseDecompositionEqualsUpsampleThenConv) {
  UpsampleConvLayer layer(5, 7, 3);
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {5, 9}, {1, 3}}) {
    const torch::Tensor x = torch::randn({2, 5, h, w}, torch::requires_grad());
    const torch::Tensor fast = layer->forward(x), reference = layer->forwardReference(x);
    ASSERT_EQ(fast.sizes(), reference.sizes());
    EXPECT_TRUE(torch::allclose(fast, reference, 1e-4, 1e-5)) << h << "x" << w;
    // Gradients agree too, so training may use the fast path.
    const torch::Tensor g = torch::randn_like(fast);
    const auto gf = torch::autograd::grad({fast}, {x, layer->conv->conv->weight}, {g});
    const auto gr = torch::autograd::grad({reference}, {x, layer->conv->conv->weight}, {g});
    EXPECT_TRUE(torch::allclose(gf[0], gr[0], 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(gf[1], gr[1], 1e-3, 1e-4));
  }
}

}  // namespace
}  // namespace stylize

namespace stylize {
namespace {

const TransformerConfig kCompact{8, 3, Architecture::kCompact};

TEST(CompactNet, KeepsAnySize) {
  TransformerNet net(kCompact);
  torch::NoGradGuard noGrad;
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{16, 16}, {17, 23}, {55, 97}, {480, 640}}) {
    const torch::Tensor y = net->forward(torch::rand({1, 3, h, w}));
    EXPECT_EQ(y.sizes(), torch::IntArrayRef({1, 3, h, w})) << h << "x" << w;
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
    EXPECT_GE(y.min().item<float>(), 0.f);
    EXPECT_LE(y.max().item<float>(), 1.f);
  }
}

TEST(CompactNet, IsMuchSmallerThanTheSmallJohnsonNetwork) {
  auto count = [](TransformerNet net) {
    int64_t n = 0;
    for (const auto& p : net->parameters()) n += p.numel();
    return n;
  };
  EXPECT_EQ(count(TransformerNet(kCompact)), 61059);  // the same count as tools/bench_transformer.py's CompactNet
  EXPECT_LT(count(TransformerNet(kCompact)) * 4, count(TransformerNet(TransformerConfig{16, 3})));
}

TEST(CompactNet, RoundTripsThroughTheModelFormat) {
  test::TempDir dir;
  TransformerNet net(kCompact);
  net->eval();
  const torch::Tensor x = torch::rand({1, 3, 40, 36});
  torch::NoGradGuard noGrad;
  saveStyleModel(dir / "live.safetensors", net, {});
  StyleModel model = loadStyleModel(dir / "live.safetensors");
  EXPECT_EQ(model.info["architecture"]["type"], "compact");
  EXPECT_EQ(model.info["version"], 2);
  EXPECT_TRUE(model.net->config() == kCompact);
  EXPECT_TRUE(torch::allclose(model.net->forward(x), net->forward(x), 1e-5, 1e-6));

  // Johnson models keep version 1, and version-1 files without a type are Johnson models.
  TransformerNet johnson(TransformerConfig{8, 1});
  saveStyleModel(dir / "j.safetensors", johnson, {});
  EXPECT_EQ(loadStyleModel(dir / "j.safetensors").info["version"], 1);
  Safetensors old = readSafetensors(dir / "j.safetensors");
  old.metadata["stylize"] = R"({"format":"stylize-transformer","version":1,"architecture":{"width":8,"blocks":1}})";
  writeSafetensors(dir / "old.safetensors", old);
  EXPECT_EQ(loadStyleModel(dir / "old.safetensors").net->config().type, Architecture::kJohnson);

  Safetensors unknown = old;
  unknown.metadata["stylize"] =
      R"({"format":"stylize-transformer","version":2,"architecture":{"type":"tiny","width":8,"blocks":1}})";
  writeSafetensors(dir / "unknown.safetensors", unknown);
  EXPECT_NE(loadError(dir / "unknown.safetensors").find("unknown architecture \"tiny\""), std::string::npos)
      << loadError(dir / "unknown.safetensors");
}

TEST(BilateralDenoise, AveragesNoiseAwayAndKeepsEdges) {
  torch::manual_seed(5);
  // A flat grey half and a white half: noise of σ 0.01 (a still camera's sensor and codec) over both.
  torch::Tensor clean = torch::full({1, 3, 40, 40}, 0.3);
  clean.narrow(3, 20, 20).fill_(0.9);
  const torch::Tensor noisy = clean + torch::randn_like(clean) * 0.01;
  const torch::Tensor out = bilateralDenoise(noisy, 0.05);
  ASSERT_EQ(out.sizes(), noisy.sizes());
  auto noiseLeft = [&](const torch::Tensor& t) { return (t - clean).narrow(3, 2, 15).std().item<double>(); };
  // About 18 effective taps: the noise falls to a quarter or less.
  EXPECT_LT(noiseLeft(out), 0.35 * noiseLeft(noisy));
  // The edge stays where it was, as sharp: a 0.6 step is 12σ of colour difference, so the other side
  // weighs nothing (exp(-72)).
  EXPECT_LT((out - clean).select(3, 19).abs().max().item<double>(), 0.01);
  EXPECT_LT((out - clean).select(3, 20).abs().max().item<double>(), 0.01);
  // A constant image is a fixed point, borders included (reflection).
  const torch::Tensor flat = torch::full({2, 3, 17, 19}, 0.42);
  EXPECT_LT((bilateralDenoise(flat, 0.05) - flat).abs().max().item<double>(), 1e-6);
}

TEST(BilateralDenoise, IsPartOfTheModelAndItsFile) {
  test::TempDir dir;
  torch::manual_seed(3);
  TransformerNet plain(TransformerConfig{8, 1});
  TransformerNet denoising(TransformerConfig{8, 1, Architecture::kJohnson, 0.05});
  torch::NoGradGuard noGrad;
  for (auto& p : denoising->named_parameters()) p.value().copy_(plain->named_parameters()[p.key()]);
  plain->eval(), denoising->eval();
  const torch::Tensor photo = torch::rand({1, 3, 1, 1}).expand({1, 3, 36, 44}).contiguous();
  const torch::Tensor noisy = photo + torch::randn_like(photo) * 0.01;
  // The same weights: the denoising network's output is the plain one's on the denoised input.
  EXPECT_TRUE(torch::allclose(denoising->forward(noisy), plain->forward(bilateralDenoise(noisy, 0.05)), 1e-5, 1e-6));
  EXPECT_GT((denoising->forward(noisy) - plain->forward(noisy)).abs().max().item<double>(), 1e-3);

  // Saved as version 4 with architecture.denoise, and loaded back the same.
  saveStyleModel(dir / "d.safetensors", denoising, {});
  StyleModel model = loadStyleModel(dir / "d.safetensors");
  EXPECT_EQ(model.info["version"], 4);
  EXPECT_EQ(model.info["architecture"]["denoise"], 0.05);
  EXPECT_TRUE(model.net->config() == denoising->config());
  EXPECT_TRUE(torch::allclose(model.net->forward(noisy), denoising->forward(noisy), 1e-5, 1e-6));
  // Models without it keep their version and metadata.
  saveStyleModel(dir / "p.safetensors", plain, {});
  EXPECT_EQ(loadStyleModel(dir / "p.safetensors").info["version"], 1);
  EXPECT_FALSE(loadStyleModel(dir / "p.safetensors").info["architecture"].contains("denoise"));

  Safetensors bad = readSafetensors(dir / "d.safetensors");
  bad.metadata["stylize"] =
      R"({"format":"stylize-transformer","version":4,"architecture":{"width":8,"blocks":1,"denoise":-1}})";
  writeSafetensors(dir / "bad.safetensors", bad);
  EXPECT_NE(loadError(dir / "bad.safetensors").find("architecture.denoise must be a number in (0, 1]"),
            std::string::npos)
      << loadError(dir / "bad.safetensors");
}

}  // namespace
}  // namespace stylize
