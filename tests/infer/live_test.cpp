#include <SDL2/SDL.h>
#include <gtest/gtest.h>

#include "data/error.h"
#include "infer/live_session.h"
#include "tests/infer/video_fixture.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

class LiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("SDL_VIDEODRIVER", "offscreen", 1);  // headless: SDL renders into memory
    av::quietLogs();
    for (int i = 0; i < 2; ++i) {
      torch::manual_seed(10 + i);
      TransformerNet net(TransformerConfig{8, 1});
      saveStyleModel(dir_ / ("model" + std::to_string(i + 1) + ".safetensors"), net, {});
    }
    test::VideoSpec spec;
    spec.width = 96;
    spec.height = 64;
    spec.framesMs = test::constantRate(10, 50);
    spec.still = true;  // every frame the same (and lossless): screens differ only by model and view
    spec.lossless = true;
    test::writeTestVideo(dir_ / "clip.mkv", spec);
  }
  LiveOptions options() {
    LiveOptions o;
    o.input = (dir_ / "clip.mkv").string();
    o.loop = true;
    o.models = {dir_ / "model1.safetensors", dir_ / "model2.safetensors"};
    o.overlay = false;
    return o;
  }
  // Steps until `frames` more stylized frames were shown.
  static void showFrames(LiveSession& session, int64_t frames) {
    const int64_t target = session.stats().frames + frames;
    for (int i = 0; i < 2000 && session.stats().frames < target; ++i) ASSERT_TRUE(session.step());
    ASSERT_GE(session.stats().frames, target);
  }
  static void pressKey(SDL_Keycode key) {
    SDL_Event event{};
    event.type = SDL_KEYDOWN;
    event.key.keysym.sym = key;
    SDL_PushEvent(&event);
  }
  test::TempDir dir_;
};

TEST_F(LiveTest, KeysSwitchModelsAndViewsAndTheScreenShowsThem) {
  LiveSession session(options());
  showFrames(session, 2);
  const torch::Tensor first = session.screen();
  ASSERT_TRUE(first.defined());
  EXPECT_EQ(first.sizes(), (std::vector<int64_t>{3, 64, 96}));
  EXPECT_GT(first.std().item<float>(), 0.02);  // not blank

  pressKey(SDLK_2);
  showFrames(session, 3);
  EXPECT_EQ(session.stats().model, 1u);
  const torch::Tensor second = session.screen();
  EXPECT_GT((second - first).abs().mean().item<float>(), 0.01);  // another model, another picture

  pressKey(SDLK_v);  // original
  showFrames(session, 1);
  EXPECT_EQ(session.stats().view, LiveView::kOriginal);
  const torch::Tensor original = session.screen();
  pressKey(SDLK_v);  // side by side: original | stylized
  showFrames(session, 1);
  const torch::Tensor side = session.screen();
  ASSERT_EQ(side.size(2), 192);
  EXPECT_LT((side.slice(2, 0, 96) - original).abs().max().item<float>(), 1e-6);
  EXPECT_LT((side.slice(2, 96, 192) - second).abs().mean().item<float>(), 0.01);

  pressKey(SDLK_MINUS);
  showFrames(session, 1);
  EXPECT_NEAR(session.stats().strength, 0.9, 1e-9);
}

TEST_F(LiveTest, FramesAndScreenshotMakeItScriptable) {
  LiveOptions o = options();
  o.frames = 4;
  o.screenshotAt = 3;
  o.screenshotPath = dir_ / "shot.png";
  o.overlay = true;
  LiveSession session(o);
  session.run();
  EXPECT_EQ(session.stats().frames, 4);
  EXPECT_FALSE(session.step());
  ASSERT_TRUE(std::filesystem::exists(dir_ / "shot.png"));
  EXPECT_GT(session.stats().fps, 0);
  EXPECT_GT(session.stats().latencyMs, 0);
}

TEST_F(LiveTest, ANonLoopingFileEndsTheSession) {
  LiveOptions o = options();
  o.loop = false;
  LiveSession session(o);
  session.run();
  EXPECT_GE(session.stats().frames, 1);
  EXPECT_LE(session.stats().frames, 10);
}

TEST_F(LiveTest, MissingSourceIsAClearError) {
  LiveOptions o = options();
  o.input = (dir_ / "nothing.mp4").string();
  try {
    LiveSession session(o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nothing.mp4: cannot open"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stylize
