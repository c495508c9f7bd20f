#include <SDL2/SDL.h>
#include <gtest/gtest.h>

#include <future>
#include <random>

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

// What a receiver got: the frames decoded (RGB, [H, W, 3] uint8) and their timestamps.
struct Received {
  std::vector<torch::Tensor> frames;
  std::vector<int64_t> pts;
  int width = 0, height = 0;
  AVRational frameRate{0, 1};
};

Received receive(const std::string& url, const ReadOptions& options = {}) {
  Received got;
  VideoDecoder decoder(url, options);
  got.width = decoder.info().width;
  got.height = decoder.info().height;
  got.frameRate = decoder.info().frameRate;
  VideoDecoder::Item item;
  while (decoder.next(item))
    if (item.frame) {
      const AVFrame& f = *item.frame;
      got.frames.push_back(
          torch::from_blob(f.data[0], {f.height, f.width, 3}, {f.linesize[0], 3, 1}, torch::kUInt8).clone());
      got.pts.push_back(f.pts);
    }
  return got;
}

double meanDifference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().mean().item<double>() / 255;
}

// The screen goes out as a UDP stream (received here with libavformat) and as a recording, at the clip's
// 50 fps with increasing timestamps, and what arrives is what the window shows.
TEST_F(LiveTest, OutputsStreamAndRecordWhatTheWindowShows) {
  const int port = test::freeLoopbackPort(SOCK_DGRAM);
  const std::string url = "udp://127.0.0.1:" + std::to_string(port);
  ReadOptions listen;
  listen.demuxerOptions = {{"timeout", "3000000"}};  // the stream has ended after 3 s of silence
  auto receiver = std::async(std::launch::async, [&] { return receive(url, listen); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // listening before the first packet
  LiveOptions o = options();
  o.frames = 100;  // 2 s or more: a receiver that joins late still gets a key frame (one a second) and many frames
  o.outputs = {LiveOutputOptions{url, "", 0, 0, 0}, LiveOutputOptions{(dir_ / "rec.mkv").string(), "", 0, 0, 0}};
  torch::Tensor screen;
  {
    LiveSession session(o);
    EXPECT_FALSE(std::filesystem::exists(dir_ / "rec.mkv"));  // written under a temporary name until the end
    session.run();
    screen = (session.screen() * 255).round().to(torch::kUInt8).permute({1, 2, 0});
    session.finishOutputs();
    const LiveStats s = session.stats();
    ASSERT_EQ(s.outputs.size(), 2u);
    for (const auto& [target, stats] : s.outputs) {
      EXPECT_GE(stats.sent, 20) << target;
      EXPECT_GT(stats.latencyMedianMs, 0) << target;
      EXPECT_GE(stats.latencyP95Ms, stats.latencyMedianMs) << target;
    }
  }
  for (const auto& [name, got] : {std::pair{std::string("udp"), receiver.get()},
                                  std::pair{std::string("recording"), receive((dir_ / "rec.mkv").string())}}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(got.width, 96);
    EXPECT_EQ(got.height, 64);
    ASSERT_GE(got.frames.size(), 10u);
    for (size_t i = 1; i < got.pts.size(); ++i) ASSERT_GT(got.pts[i], got.pts[i - 1]) << "frame " << i;
    // Every frame of the still clip is stylized alike: each received frame is the screen, up to H.264's loss
    // (ultrafast, CRF 23: 0.034 here), and far closer to it than the same screen upside down is.
    const double unlike = meanDifference(screen.flip({0}), screen);
    for (const torch::Tensor& frame : {got.frames.back(), got.frames[got.frames.size() / 2]}) {
      EXPECT_LT(meanDifference(frame, screen), 0.06);
      EXPECT_LT(meanDifference(frame, screen), 0.5 * unlike);
    }
    std::cout << fmt::format("[ measured ] {}: {} frames, difference to the screen {:.3f} (upside down: {:.3f})\n",
                             name, got.frames.size(), meanDifference(got.frames.back(), screen), unlike);
  }
  const Received recording = receive((dir_ / "rec.mkv").string());
  EXPECT_NEAR(av_q2d(recording.frameRate), 50, 0.5);  // the clip's rate
}

// A clip whose picture changes at 1 s as a tone starts (10 fps, PCM sound).
void writeSyncClip(const std::filesystem::path& path) {
  test::VideoSpec spec;
  spec.width = 96;
  spec.height = 64;
  spec.framesMs = test::constantRate(20, 10);
  spec.still = true;
  spec.cutAt = 10;
  spec.lossless = true;
  spec.audio = true;
  spec.audioSeconds = 2;
  spec.toneFromMs = 1000;
  spec.audioCodec = AV_CODEC_ID_PCM_S16LE;
  test::writeTestVideo(path, spec);
}

// --audio: an output places each sound and each picture by its capture time, a fixed delay later, so they
// stay together however long the pictures took to stylize. The clip's sound plays as a microphone; pictures
// that change at its 1 s are offered as a camera would deliver them, each only after a random "stylizing"
// delay of up to 0.2 s: in the recording the change and the tone meet.
TEST_F(LiveTest, AnOutputKeepsSoundWithThePictureWhateverTheLatency) {
  writeSyncClip(dir_ / "sync.mkv");
  AudioCapture microphone((dir_ / "sync.mkv").string());
  LiveOutputOptions o{(dir_ / "rec.mp4").string(), "", 96, 64, 10};
  o.audio = &microphone.stream();
  o.audioDelay = 0.3;
  LiveOutput output(o);
  std::promise<std::chrono::steady_clock::time_point> started;
  bool first = true;
  microphone.start([&](const AVPacket& packet, std::chrono::steady_clock::time_point at) {
    if (first) started.set_value(at), first = false;
    output.offerAudio(packet, at);
  });
  const auto zero = started.get_future().get();  // the microphone's first sample: the clip's time 0
  torch::manual_seed(3);
  const torch::Tensor before = (torch::rand({64, 96, 3}) * 255).to(torch::kUInt8),
                      after = (torch::rand({64, 96, 3}) * 255).to(torch::kUInt8);
  std::mt19937 random(5);
  for (int k = 0; k < 20; ++k) {
    const auto captured = zero + std::chrono::milliseconds(100 * k);
    std::this_thread::sleep_until(captured + std::chrono::milliseconds(random() % 200));
    output.offer(k < 10 ? before : after, captured);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  output.finish();
  const LiveOutputStats stats = output.stats();
  EXPECT_TRUE(stats.audioError.empty()) << stats.audioError;
  EXPECT_EQ(stats.late, 0);
  const double picture = test::biggestPictureChangeSeconds(dir_ / "rec.mp4");
  const double sound = test::audioOnsetSeconds(dir_ / "rec.mp4");
  std::cout << fmt::format("[ measured ] picture changes at {:.3f} s, the tone starts at {:.3f} s: {:+.0f} ms\n",
                           picture, sound, 1e3 * (sound - picture));
  EXPECT_NEAR(picture, 1.0, 0.051);  // the recording starts with the first picture
  // Within what a viewer notices (ITU-R BT.1359: 45 ms of sound ahead); sound is placed by whole packets
  // (21 ms here), pictures by frames.
  EXPECT_NEAR(sound - picture, 0, 0.045);
}

// The same through a whole session: --audio with the clip as camera and microphone gives a recording with
// the sound from its start to its end.
TEST_F(LiveTest, SoundGoesIntoRecordings) {
  writeSyncClip(dir_ / "sync.mkv");
  LiveOptions o = options();
  o.input = o.audio = (dir_ / "sync.mkv").string();
  o.loop = false;
  o.outputs = {LiveOutputOptions{(dir_ / "rec.mp4").string(), "", 0, 0, 0}};
  {
    LiveSession session(o);
    session.run();
    session.finishOutputs();
    EXPECT_TRUE(session.stats().outputs.at(0).second.audioError.empty());
  }
  const auto recording = test::readVideoContents(dir_ / "rec.mp4");
  ASSERT_FALSE(recording.audioTimes.empty());
  ASSERT_FALSE(recording.frameTimes.empty());
  EXPECT_NEAR(recording.audioTimes.front(), 0, 0.05);
  EXPECT_GT(recording.audioTimes.back(), 1.5);
  EXPECT_NEAR(test::audioOnsetSeconds(dir_ / "rec.mp4"), 1.0, 0.05);  // the sound's own timing is kept

  o.outputs.clear();
  try {
    LiveSession session(o);
    ADD_FAILURE() << "--audio without an output: no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs an --output"), std::string::npos) << e.what();
  }
}

// A virtual camera that is missing or is not a V4L2 output is refused before anything runs. (v4l2loopback
// cannot be loaded here: the device path differs from a file only in the muxer libavdevice opens.)
TEST_F(LiveTest, OutputDevicesAndUrlsAreCheckedUpFront) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"/dev/video-stylize-test",
       "/dev/video-stylize-test: no such device; create a virtual camera with: sudo "
       "modprobe v4l2loopback"},
      {"/dev/null", "/dev/null: not a V4L2 device"},
      {"gopher://x:70", "unknown protocol 'gopher'"},
      {(dir_ / "rec.xyz").string(), "unknown video container '.xyz'"},
  };
  for (const auto& [target, error] : cases) {
    LiveOptions o = options();
    o.outputs = {LiveOutputOptions{target, "", 0, 0, 0}};
    try {
      LiveSession session(o);
      ADD_FAILURE() << target << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(error), std::string::npos) << e.what();
    }
  }
  LiveOutputOptions yuv{"/dev/null", "rgb24", 64, 48, 0};
  try {
    LiveOutput output(yuv);
    ADD_FAILURE() << "rgb24: no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--output-format rgb24: a virtual camera takes yuyv422 or yuv420p"),
              std::string::npos)
        << e.what();
  }
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
