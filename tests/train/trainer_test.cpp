#include "train/trainer.h"

#include <gtest/gtest.h>

#include "data/error.h"
#include "data/image.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

// A small real setup: random-weight VGG prefix (normalised), random photos on disk, a tiny network.
struct TinySetup {
  test::TempDir dir;
  Vgg19 vgg;
  std::unique_ptr<PerceptualLoss> loss;
  std::unique_ptr<ImageFolder> photos;

  TinySetup() {
    writeSafetensors(dir / "vgg.safetensors", test::randomVgg(4));
    vgg = loadNormalizedVgg19(dir / "vgg.safetensors", dir / "cache", [] {
      return std::vector<torch::Tensor>{torch::rand({3, 32, 32}), torch::rand({3, 32, 32})};
    });
    LossConfig config;
    config.contentLayers = {{"relu2_2", 1.0}};
    config.styleLayers = {{"relu1_1", 1.0}, {"relu2_1", 1.0}};
    config.styleWeight = 10;
    config.tvWeight = 1;
    loss = std::make_unique<PerceptualLoss>(vgg, config);
    // A striped "painting": easy to learn, far from the photos' statistics.
    torch::Tensor style = torch::zeros({3, 64, 64});
    using torch::indexing::Slice;
    style.index_put_({0, Slice(), Slice(0, 64, 8)}, 1.0);
    style.index_put_({2, Slice(0, 64, 8), Slice()}, 1.0);
    loss->setStyle({style}, {1.0});
    std::filesystem::create_directories(dir / "photos");
    for (int i = 0; i < 8; ++i) saveImage(dir / ("photos/p" + std::to_string(i) + ".png"), torch::rand({3, 40, 48}));
    photos = std::make_unique<ImageFolder>(dir / "photos");
  }

  TrainOptions options(int64_t iterations) const {
    TrainOptions o;
    o.architecture = {8, 1};
    o.iterations = iterations;
    o.batches = {2, 32, 7, 2};
    o.learningRate = 1e-2;
    o.checkpointEvery = 0;
    o.checkpoint = dir / "ckpt.safetensors";
    return o;
  }
};

TEST(Trainer, ATinyRunLowersTheLoss) {
  TinySetup s;
  Trainer trainer(*s.loss, s.options(40));
  std::vector<double> losses;
  std::atomic<bool> stop{false};
  EXPECT_TRUE(trainer.run(
      *s.photos, [&](const TrainProgress& p) { losses.push_back(p.loss.total); }, stop));
  ASSERT_EQ(losses.size(), 40u);
  const double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[37] + losses[38] + losses[39]) / 3;
  EXPECT_LT(last, 0.5 * first) << first << " → " << last;
}

TEST(Trainer, ResumeEqualsAnUninterruptedRun) {
  TinySetup s;
  std::atomic<bool> stop{false};
  std::vector<double> straight;
  Trainer a(*s.loss, s.options(10));
  a.run(
      *s.photos, [&](const TrainProgress& p) { straight.push_back(p.loss.total); }, stop);

  Trainer b(*s.loss, s.options(10));
  b.run(
      *s.photos, [&](const TrainProgress& p) { stop = p.iteration == 5; }, stop);  // "Ctrl-C" after iteration 5
  ASSERT_EQ(b.iteration(), 5);
  ASSERT_TRUE(std::filesystem::exists(s.dir / "ckpt.safetensors"));

  torch::manual_seed(12345);  // disturb the global RNG: resume must restore it
  stop = false;
  std::vector<double> resumed;
  Trainer c(*s.loss, s.options(10));
  c.resume(s.dir / "ckpt.safetensors");
  EXPECT_EQ(c.iteration(), 5);
  EXPECT_TRUE(c.run(
      *s.photos, [&](const TrainProgress& p) { resumed.push_back(p.loss.total); }, stop));
  ASSERT_EQ(resumed.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(resumed[i], straight[5 + i], 1e-5 * std::abs(straight[5 + i])) << i;
  const auto pa = a.net()->named_parameters(), pc = c.net()->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(torch::allclose(p.value(), pc[p.key()], 1e-5, 1e-6)) << p.key();
}

TEST(Trainer, ResumeRejectsAMismatchedCheckpoint) {
  TinySetup s;
  std::atomic<bool> stop{false};
  Trainer a(*s.loss, s.options(2));
  a.run(*s.photos, {}, stop);
  a.saveCheckpoint(s.dir / "ckpt.safetensors");
  TrainOptions other = s.options(2);
  other.architecture = {16, 1};
  Trainer b(*s.loss, other);
  EXPECT_THROW(b.resume(s.dir / "ckpt.safetensors"), Error);
  EXPECT_THROW(b.resume(s.dir / "photos/p0.png"), Error);
}

// A patch pushed deep into the output tanh's tail gets no gradient from the perceptual loss and would stay
// a flat black blob forever; the saturation penalty brings it back.
TEST(Trainer, ASaturatedOutputRecoversOnlyWithTheSaturationPenalty) {
  TinySetup s;
  auto meanPreActivationAfterTraining = [&](double saturationWeight) {
    TrainOptions o = s.options(30);
    o.learningRate = 0.1;
    o.saturationWeight = saturationWeight;
    Trainer trainer(*s.loss, o);
    {
      torch::NoGradGuard noGrad;
      trainer.net()->named_parameters()["deconv3.conv.bias"].fill_(-12);  // every pixel saturated black
    }
    std::atomic<bool> stop{false};
    trainer.run(*s.photos, {}, stop);
    torch::NoGradGuard noGrad;
    torch::Tensor pre;
    trainer.net()->forward(torch::rand({1, 3, 32, 32}), &pre);
    return pre.mean().item<double>();
  };
  EXPECT_LT(meanPreActivationAfterTraining(0), -11.5);  // stuck
  EXPECT_GT(meanPreActivationAfterTraining(10), -9.0);  // climbing back towards the working range
}

// A deeper network grown from a trained one (--init-model with more --blocks) computes exactly what the
// trained one did until training changes it: the added residual blocks start as the identity.
TEST(Trainer, InitFromAShallowerModelAddsIdentityBlocks) {
  TinySetup s;
  for (Architecture type : {Architecture::kJohnson, Architecture::kCompact}) {
    torch::manual_seed(3);
    TransformerNet trained(TransformerConfig{8, 2, type});
    // Trained-looking norms (a fresh net has γ = 1, β = 0 everywhere), so the copy is really checked.
    for (auto& p : trained->named_parameters()) p.value().data().uniform_(0.5, 1.5);
    TrainOptions grown = s.options(1);
    grown.architecture = {8, 4, type};
    Trainer trainer(*s.loss, grown);
    trainer.initFrom(trained);
    torch::NoGradGuard noGrad;
    trained->eval();
    trainer.net()->eval();
    const torch::Tensor x = torch::rand({1, 3, 36, 44});
    EXPECT_TRUE(torch::allclose(trainer.net()->forward(x), trained->forward(x), 1e-5, 1e-6)) << architectureName(type);

    TrainOptions narrower = s.options(1);
    narrower.architecture = {8, 1, type};  // fewer blocks, or another width, cannot start from it
    Trainer shallow(*s.loss, narrower);
    EXPECT_THROW(shallow.initFrom(trained), Error);
  }
}

}  // namespace
}  // namespace stylize
