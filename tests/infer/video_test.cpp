#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "data/error.h"
#include "data/files.h"
#include "infer/flicker.h"
#include "infer/stabilizer.h"
#include "infer/video_pipeline.h"
#include "tests/infer/video_fixture.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

class VideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    av::quietLogs();
    torch::manual_seed(3);
    TransformerNet net(TransformerConfig{8, 1});
    saveStyleModel(dir_ / "tiny.safetensors", net, {});
  }
  Stylizer stylizer() { return Stylizer(dir_ / "tiny.safetensors", torch::kCPU); }
  VideoReport run(const std::filesystem::path& in, const std::filesystem::path& out, VideoJob job = {},
                  const VideoCallbacks& callbacks = {}) {
    Stylizer s = stylizer();
    job.input = in.string();
    job.output = out;
    return stylizeVideo(s, job, callbacks);
  }
  test::TempDir dir_;
};

void expectTimesNear(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 5e-4) << "frame " << i;
}

TEST_F(VideoTest, KeepsEveryTimestampAudioBitsAndRotation) {
  test::VideoSpec spec;
  spec.framesMs = {0, 40, 80, 200, 230, 500, 540, 580, 900, 960};  // variable frame rate
  spec.audio = true;
  spec.rotation = 90;
  for (const std::string ext : {".mp4", ".mkv", ".mov"}) {
    SCOPED_TRACE(ext);
    const auto in = dir_ / ("in" + ext), out = dir_ / ("out" + ext);
    test::writeTestVideo(in, spec);
    const VideoReport report = run(in, out);
    EXPECT_EQ(report.frames, 10);
    EXPECT_FALSE(report.interrupted);
    const test::VideoContents source = test::readVideoContents(in), result = test::readVideoContents(out);
    EXPECT_EQ(result.width, 64);
    EXPECT_EQ(result.height, 48);
    expectTimesNear(result.frameTimes, source.frameTimes);
    if (ext != ".mkv") {  // Matroska has no display matrix
      EXPECT_NEAR(std::abs(source.rotation), 90, 1e-6);
    }
    EXPECT_NEAR(result.rotation, source.rotation, 1e-6);
    ASSERT_GT(source.audioPackets.size(), 40u);
    EXPECT_EQ(result.audioPackets, source.audioPackets);  // copied, not re-encoded
    expectTimesNear(result.audioTimes, source.audioTimes);
    EXPECT_EQ(report.copiedPackets, int64_t(source.audioPackets.size()));
    EXPECT_NEAR(result.duration, source.duration, 0.05);
  }
}

TEST_F(VideoTest, AudioTheContainerCannotHoldIsReencodedNotLost) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(25, 25);
  spec.audio = true;  // AAC: WebM takes only Opus/Vorbis
  test::writeTestVideo(dir_ / "in.mp4", spec);
  const VideoReport report = run(dir_ / "in.mp4", dir_ / "out.webm");
  ASSERT_EQ(report.transcodedStreams.size(), 1u);
  EXPECT_TRUE(report.droppedStreams.empty());
  const auto out = test::readVideoContents(dir_ / "out.webm");
  EXPECT_EQ(out.frameTimes.size(), 25u);
  ASSERT_GT(out.audioPackets.size(), 10u);
  EXPECT_NEAR(out.audioTimes.front(), 0, 0.03);
  EXPECT_NEAR(out.audioTimes.back(), 1.0, 0.05);  // one second of audio, all of it
}

// mp4's codec table lists FLAC, but its muxer refuses FLAC as experimental when the file is started: the
// audio must be re-encoded (AAC), not fail the run; PCM too.
TEST_F(VideoTest, FlacAndPcmIntoMp4AreReencodedNotFatal) {
  for (AVCodecID codec : {AV_CODEC_ID_FLAC, AV_CODEC_ID_PCM_S16LE}) {
    SCOPED_TRACE(avcodec_get_name(codec));
    test::VideoSpec spec;
    spec.framesMs = test::constantRate(25, 25);
    spec.audio = true;
    spec.audioCodec = codec;
    test::writeTestVideo(dir_ / "in.mkv", spec);
    const VideoReport report = run(dir_ / "in.mkv", dir_ / "out.mp4");
    ASSERT_EQ(report.transcodedStreams.size(), 1u);
    EXPECT_NE(report.transcodedStreams[0].find("aac"), std::string::npos) << report.transcodedStreams[0];
    EXPECT_TRUE(report.droppedStreams.empty());
    const auto out = test::readVideoContents(dir_ / "out.mp4");
    EXPECT_EQ(out.frameTimes.size(), 25u);
    ASSERT_GT(out.audioPackets.size(), 10u);
    EXPECT_NEAR(out.audioTimes.front(), 0, 0.03);
    EXPECT_NEAR(out.audioTimes.back(), 1.0, 0.05);
  }
}

TEST_F(VideoTest, OddSizesEncodeEvenUnlessThePixelFormatKeepsThem) {
  test::VideoSpec spec;
  spec.width = 97;
  spec.height = 55;
  spec.framesMs = test::constantRate(6, 25);
  test::writeTestVideo(dir_ / "odd.mkv", spec);
  VideoReport report = run(dir_ / "odd.mkv", dir_ / "even.mp4");
  EXPECT_EQ(report.width, 96);
  EXPECT_EQ(report.height, 54);
  EXPECT_EQ(test::readVideoContents(dir_ / "even.mp4").frameTimes.size(), 6u);
  VideoJob job;
  job.write.pixFmt = "yuv444p";
  report = run(dir_ / "odd.mkv", dir_ / "full.mp4", job);
  const auto full = test::readVideoContents(dir_ / "full.mp4");
  EXPECT_EQ(full.width, 97);
  EXPECT_EQ(full.height, 55);
}

TEST_F(VideoTest, FramesMatchTheStylizerOnTheDecodedInput) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(3, 10);
  test::writeTestVideo(dir_ / "in.mkv", spec);
  VideoJob job;
  job.write.pixFmt = "yuv444p";
  job.write.crf = 0;  // lossless x264: what is left is RGB↔YUV rounding
  std::vector<torch::Tensor> shown;
  VideoCallbacks callbacks;
  callbacks.frame = [&](const AVFrame&, const AVFrame& rgb) {
    shown.push_back(framesToTensor({&rgb}, torch::kCPU)[0]);
    return true;
  };
  run(dir_ / "in.mkv", dir_ / "out.mkv", job, callbacks);
  ASSERT_EQ(shown.size(), 3u);

  VideoDecoder input((dir_ / "in.mkv").string()), output((dir_ / "out.mkv").string());
  Stylizer s = stylizer();
  VideoDecoder::Item a, b;
  for (int i = 0; i < 3; ++i) {
    do ASSERT_TRUE(input.next(a));
    while (!a.frame);
    do ASSERT_TRUE(output.next(b));
    while (!b.frame);
    const torch::Tensor expected = s(framesToTensor({a.frame.get()}, torch::kCPU))[0];
    EXPECT_LT((shown[i] - expected).abs().max().item<float>(), 1.0f / 255 + 1e-6);  // 8-bit rounding only
    const torch::Tensor decoded = framesToTensor({b.frame.get()}, torch::kCPU)[0];
    EXPECT_LT((decoded - expected).abs().mean().item<float>(), 0.01);
    EXPECT_GT((decoded - framesToTensor({a.frame.get()}, torch::kCPU)[0]).abs().mean().item<float>(), 0.05);
  }
}

TEST_F(VideoTest, StartAndDurationCutAndShiftToZero) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(50, 25);
  spec.audio = true;
  test::writeTestVideo(dir_ / "in.mp4", spec);
  VideoJob job;
  job.read.start = 0.4;
  job.read.duration = 0.8;
  const VideoReport report = run(dir_ / "in.mp4", dir_ / "cut.mp4", job);
  EXPECT_EQ(report.frames, 20);
  const auto cut = test::readVideoContents(dir_ / "cut.mp4");
  ASSERT_EQ(cut.frameTimes.size(), 20u);
  EXPECT_NEAR(cut.frameTimes.front(), 0, 1e-3);
  EXPECT_NEAR(cut.frameTimes.back(), 0.76, 1e-3);
  ASSERT_FALSE(cut.audioTimes.empty());
  EXPECT_GE(cut.audioTimes.front(), -0.05);
  EXPECT_LT(cut.audioTimes.back(), 0.85);
}

// What a GPU run does (YUV planes to the model's device, RGB there, YUV planes back to the encoder), on the
// CPU: the same frames, timestamps and audio as the swscale path, pictures within swscale's own rounding
// and chroma interpolation (the source's chroma is smooth).
TEST_F(VideoTest, TensorColorConversionGivesTheSwscalePictures) {
  test::VideoSpec spec;
  spec.width = 66, spec.height = 50;
  spec.framesMs = test::constantRate(8, 25);
  spec.audio = true;
  spec.lossless = true;
  test::writeTestVideo(dir_ / "in.mkv", spec);
  VideoJob job;
  job.write.codec = "ffv1";  // lossless both ways: only the conversions differ
  job.colorConversion = ColorConversion::kSwscale;
  run(dir_ / "in.mkv", dir_ / "swscale.mkv", job);
  job.colorConversion = ColorConversion::kTensor;
  const VideoReport report = run(dir_ / "in.mkv", dir_ / "tensor.mkv", job);
  EXPECT_EQ(report.frames, 8);
  const auto a = test::readVideoContents(dir_ / "swscale.mkv"), b = test::readVideoContents(dir_ / "tensor.mkv");
  EXPECT_EQ(a.frameTimes, b.frameTimes);
  EXPECT_EQ(a.audioPackets, b.audioPackets);

  // Luma: the two paths differ only by rounding (the source's chroma is smooth, so how each upsamples it
  // hardly moves the model's input). Chroma: swscale subsamples the stylized frame with a bicubic filter,
  // the tensor path by 2×2 means; on a random network's pixel-level noise those differ, on average little.
  ReadOptions planar;
  planar.keepYuv = true;
  VideoDecoder left((dir_ / "swscale.mkv").string(), planar), right((dir_ / "tensor.mkv").string(), planar);
  VideoDecoder::Item x, y;
  int frames = 0;
  while (left.next(x)) {
    if (!x.frame) continue;
    do ASSERT_TRUE(right.next(y));
    while (!y.frame);
    const auto p = av::framePlanes(*x.frame), q = av::framePlanes(*y.frame);
    ASSERT_TRUE(p && q);
    const auto diff = [](const torch::Tensor& a, const torch::Tensor& b) {
      return (a.to(torch::kInt32) - b.to(torch::kInt32)).abs();
    };
    // Measured: luma at most 4 codes apart, 0.5-0.7 on average; chroma at most 12, 0.9-1.0 on average.
    EXPECT_LT(diff(p->y, q->y).to(torch::kFloat32).mean().item<float>(), 1.0f) << frames;
    EXPECT_LE(diff(p->y, q->y).max().item<int>(), 8) << frames;
    for (const auto& [c, d] : {std::pair{p->u, q->u}, std::pair{p->v, q->v}}) {
      EXPECT_LT(diff(c, d).to(torch::kFloat32).mean().item<float>(), 1.5f) << frames;
      EXPECT_LE(diff(c, d).max().item<int>(), 24) << frames;
    }
    ++frames;
  }
  EXPECT_EQ(frames, 8);
}

// The test writer stores every video packet before any audio, so the muxer places the first second of
// audio after some 14 s of video: the window's audio lies far beyond the video frame that ends it.
// Sound and picture stay together through every audio path: copied, and re-encoded (AAC's and Opus' encoder
// delay, "priming", must be cancelled by the container's edit list or pre-skip, or the sound lags by
// 21-23 ms), also with a --start window. The clip's picture changes at 1 s as a tone starts; what a player
// decodes from the output must keep them within 5 ms (the input's own offset is under 1 ms).
TEST_F(VideoTest, SoundAndPictureStayInSyncWhenAudioIsCopiedOrReencoded) {
  struct Case {
    std::string in, out;
    AVCodecID audio;
    double start;
  };
  for (const Case& c : {Case{".mkv", ".mp4", AV_CODEC_ID_PCM_S16LE, 0}, Case{".mkv", ".mp4", AV_CODEC_ID_FLAC, 0},
                        Case{".mp4", ".webm", AV_CODEC_ID_AAC, 0}, Case{".mp4", ".mp4", AV_CODEC_ID_AAC, 0},
                        Case{".mkv", ".mp4", AV_CODEC_ID_PCM_S16LE, 0.3}, Case{".mp4", ".mkv", AV_CODEC_ID_AAC, 0.3},
                        Case{".mkv", ".webm", AV_CODEC_ID_FLAC, 0.3}, Case{".mkv", ".ts", AV_CODEC_ID_PCM_S16LE, 0},
                        Case{".mkv", ".avi", AV_CODEC_ID_FLAC, 0}}) {
    SCOPED_TRACE(c.in + " " + avcodec_get_name(c.audio) + " -> " + c.out + " --start " + std::to_string(c.start));
    test::VideoSpec spec;
    spec.framesMs = test::constantRate(50, 25);
    spec.still = true;
    spec.cutAt = 25;
    spec.audio = true;
    spec.audioSeconds = 2;
    spec.toneFromMs = 1000;
    spec.audioCodec = c.audio;
    const auto in = dir_ / ("sync" + c.in), out = dir_ / ("sync_out" + c.out);
    test::writeTestVideo(in, spec);
    const double inPicture = test::biggestPictureChangeSeconds(in), inSound = test::audioOnsetSeconds(in);
    ASSERT_NEAR(inPicture, 1.0, 1e-3);
    ASSERT_NEAR(inSound - inPicture, 0, 1e-3);
    VideoJob job;
    job.read.start = c.start;
    run(in, out, job);
    const double picture = test::biggestPictureChangeSeconds(out), sound = test::audioOnsetSeconds(out);
    // The window starts at the frame at or after --start; TS and AVI files start where B-frames let them.
    EXPECT_NEAR(picture - test::readVideoContents(out).frameTimes.front(), 1.0 - c.start, 0.041);
    EXPECT_NEAR(sound - picture, 0, 0.005) << "picture changes at " << picture << " s, sound at " << sound << " s";
    std::printf("%s %s -> %s, --start %.1f: sound - picture %+.2f ms\n", c.in.c_str(), avcodec_get_name(c.audio),
                c.out.c_str(), c.start, 1e3 * (sound - picture));
  }
}

TEST_F(VideoTest, AudioStoredAfterTheWindowsLastFrameIsStillKept) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(500, 25);
  spec.audio = true;
  test::writeTestVideo(dir_ / "in.mp4", spec);
  VideoJob job;
  job.read.duration = 0.5;
  const VideoReport report = run(dir_ / "in.mp4", dir_ / "cut.mp4", job);
  EXPECT_EQ(report.frames, 13);
  const auto cut = test::readVideoContents(dir_ / "cut.mp4");
  ASSERT_FALSE(cut.audioTimes.empty());
  EXPECT_NEAR(cut.audioTimes.front(), 0, 0.03);
  EXPECT_GT(cut.audioTimes.back(), 0.4);  // AAC frames are 21 ms: the last one starts near the end
  EXPECT_LT(cut.audioTimes.back(), 0.5);
}

// MPEG-TS (and any file with a start offset) starts at 0 in the output, as `ffmpeg -c copy` does, and
// --start/--duration count from the file's own start.
TEST_F(VideoTest, AStartOffsetIsRemovedAndTheWindowCountsFromTheFilesStart) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(50, 25);
  for (int64_t& ms : spec.framesMs) ms += 3000;  // the first frame at 3 s
  test::writeTestVideo(dir_ / "in.ts", spec);
  const auto source = test::readVideoContents(dir_ / "in.ts");
  ASSERT_EQ(source.frameTimes.size(), 50u);
  ASSERT_GT(source.frameTimes.front(), 2.9);

  run(dir_ / "in.ts", dir_ / "all.mp4");
  const auto all = test::readVideoContents(dir_ / "all.mp4");
  ASSERT_EQ(all.frameTimes.size(), 50u);
  EXPECT_NEAR(all.frameTimes.front(), 0, 1e-3);
  EXPECT_NEAR(all.frameTimes.back(), 1.96, 2e-3);
  EXPECT_LT(all.duration, 2.1);

  VideoJob window;
  window.read.duration = 0.4;
  EXPECT_EQ(run(dir_ / "in.ts", dir_ / "first.mp4", window).frames, 10);
  window.read.start = 1.0;
  EXPECT_EQ(run(dir_ / "in.ts", dir_ / "later.mp4", window).frames, 10);
  EXPECT_NEAR(test::readVideoContents(dir_ / "later.mp4").frameTimes.front(), 0, 1e-3);
}

// Two MPEG-TS recordings joined byte for byte: the clock restarts half-way, with audio. The run must end
// (it once deadlocked after the first frame) with one continuous, increasing timeline and all the audio.
TEST_F(VideoTest, ATimestampJumpBackwardsGivesOneContinuousTimeline) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(25, 25);
  spec.audio = true;
  test::writeTestVideo(dir_ / "part.ts", spec);
  const std::string part = readFile(dir_ / "part.ts");
  std::ofstream(dir_ / "joined.ts", std::ios::binary) << part << part;
  const auto one = test::readVideoContents(dir_ / "part.ts");

  const VideoReport report = run(dir_ / "joined.ts", dir_ / "out.mp4");
  EXPECT_EQ(report.frames, 50);
  const auto out = test::readVideoContents(dir_ / "out.mp4");
  ASSERT_EQ(out.frameTimes.size(), 50u);
  EXPECT_NEAR(out.frameTimes.front(), 0, 0.03);  // the audio's priming samples start 21 ms before the video
  for (size_t i = 1; i < out.frameTimes.size(); ++i)
    EXPECT_NEAR(out.frameTimes[i] - out.frameTimes[i - 1], 0.04, 2e-3) << "frame " << i;
  EXPECT_EQ(out.audioPackets.size(), 2 * one.audioPackets.size());
  for (size_t i = 1; i < out.audioTimes.size(); ++i) EXPECT_GT(out.audioTimes[i], out.audioTimes[i - 1]) << i;
  // Audio stays with its pictures: the second part's sound starts where its first frame does.
  ASSERT_FALSE(out.audioTimes.empty());
  EXPECT_NEAR(out.audioTimes[one.audioPackets.size()], out.frameTimes[25], 0.1);
}

TEST_F(VideoTest, ReadingCanScaleToACameraSize) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(3, 25);
  spec.still = true;
  spec.lossless = true;
  test::writeTestVideo(dir_ / "in.mkv", spec);  // 64x48
  ReadOptions scaled;
  scaled.width = 32;
  scaled.height = 24;
  VideoDecoder full((dir_ / "in.mkv").string()), half((dir_ / "in.mkv").string(), scaled);
  EXPECT_EQ(half.info().width, 32);
  EXPECT_EQ(half.info().height, 24);
  VideoDecoder::Item a, b;
  ASSERT_TRUE(full.next(a) && half.next(b));
  ASSERT_EQ(b.frame->width, 32);
  ASSERT_EQ(b.frame->height, 24);
  // The same picture, smaller: its mean colour is kept.
  const torch::Tensor big = framesToTensor({a.frame.get()}, torch::kCPU),
                      small = framesToTensor({b.frame.get()}, torch::kCPU);
  EXPECT_TRUE(torch::allclose(big.mean({2, 3}), small.mean({2, 3}), 0, 0.02));
  scaled.height = 0;
  EXPECT_THROW(VideoDecoder((dir_ / "in.mkv").string(), scaled), Error);
}

TEST_F(VideoTest, ProcessingSizeScalesBack) {
  test::VideoSpec spec;
  spec.width = 96;
  spec.height = 64;
  spec.framesMs = test::constantRate(2, 25);
  test::writeTestVideo(dir_ / "in.mkv", spec);
  VideoJob job;
  job.maxSize = 48;
  const VideoReport report = run(dir_ / "in.mkv", dir_ / "out.mkv", job);
  EXPECT_EQ(report.inferenceWidth, 48);
  EXPECT_EQ(report.inferenceHeight, 32);
  EXPECT_EQ(report.width, 96);
  EXPECT_EQ(processingSize(1920, 1080, 0, 720), std::make_pair(720, 405));
  EXPECT_EQ(processingSize(640, 480, 0, 720), std::make_pair(640, 480));
  EXPECT_EQ(processingSize(640, 480, 320, 0), std::make_pair(320, 240));
}

TEST_F(VideoTest, StopWritesAValidShorterFile) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(40, 25);
  spec.audio = true;
  test::writeTestVideo(dir_ / "in.mp4", spec);
  std::atomic<bool> stop{false};
  VideoCallbacks callbacks;
  callbacks.stop = &stop;
  callbacks.progress = [&](const VideoProgress& p) {
    if (p.frames >= 5) stop = true;
  };
  const VideoReport report = run(dir_ / "in.mp4", dir_ / "short.mp4", {}, callbacks);
  EXPECT_TRUE(report.interrupted);
  EXPECT_GE(report.frames, 5);
  EXPECT_LT(report.frames, 40);
  EXPECT_EQ(int64_t(test::readVideoContents(dir_ / "short.mp4").frameTimes.size()), report.frames);
}

TEST_F(VideoTest, BadInputsAreClearErrorsAndLeaveNothing) {
  auto expectError = [&](const std::filesystem::path& in, const std::string& needle, const std::filesystem::path& out) {
    try {
      run(in, out);
      ADD_FAILURE() << "no error for " << in;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(out));
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
      EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
  };
  expectError(dir_ / "missing.mp4", "missing.mp4: cannot open", dir_ / "o1.mp4");
  std::ofstream(dir_ / "empty.mp4").flush();
  expectError(dir_ / "empty.mp4", "empty.mp4: cannot open", dir_ / "o2.mp4");
  std::ofstream(dir_ / "text.mp4") << "this is not a video, just text\n";
  expectError(dir_ / "text.mp4", "text.mp4: cannot open", dir_ / "o3.mp4");

  test::VideoSpec audioOnly;
  audioOnly.video = false;
  audioOnly.audio = true;
  test::writeTestVideo(dir_ / "sound.m4a", audioOnly);
  expectError(dir_ / "sound.m4a", "sound.m4a: has no video stream", dir_ / "o4.mp4");

  // Without +faststart the index sits at the end: cutting the file loses it.
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(10, 25);
  test::writeTestVideo(dir_ / "whole.mp4", spec);
  const std::string bytes = readFile(dir_ / "whole.mp4");
  std::ofstream(dir_ / "cut.mp4", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
  expectError(dir_ / "cut.mp4", "cut.mp4: cannot open", dir_ / "o5.mp4");

  expectError(dir_ / "whole.mp4", "no/such/folder", dir_ / "no" / "such" / "folder" / "o.mp4");
  expectError(dir_ / "whole.mp4", "unknown video container", dir_ / "o.xyz");
}

TEST_F(VideoTest, CorruptPacketsMidStreamAreSkippedNotFatal) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(30, 25);
  test::writeTestVideo(dir_ / "in.mkv", spec);
  std::string bytes = readFile(dir_ / "in.mkv");
  for (size_t i = bytes.size() / 3; i < bytes.size() / 3 + 400; ++i) bytes[i] = char(i * 131);
  std::ofstream(dir_ / "broken.mkv", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  const VideoReport report = run(dir_ / "broken.mkv", dir_ / "out.mp4");
  EXPECT_GE(report.frames, 20);
  EXPECT_LE(report.frames, 30);
  const auto out = test::readVideoContents(dir_ / "out.mp4");
  EXPECT_EQ(int64_t(out.frameTimes.size()), report.frames);
  for (size_t i = 1; i < out.frameTimes.size(); ++i) EXPECT_GT(out.frameTimes[i], out.frameTimes[i - 1]);
}

// A still input (a photo with a horizontal ramp, so the flow has texture to lock on) for the stabilizer.
torch::Tensor stillPhoto() {
  return torch::rand({3, 48, 64}).mul(0.2).add(torch::linspace(0, 1, 64).expand({3, 48, 64}) * 0.6);
}

// Six frames of a flickering "model" over one still input: the summed mean absolute change between
// consecutive frames of its raw outputs and of the stabilizer's.
struct FrameChange {
  double raw = 0, steady = 0;
};
FrameChange changeThroughStabilizer(FrameStabilizer& stabilizer, const torch::Tensor& photo,
                                    const std::function<torch::Tensor()>& model) {
  FrameChange change;
  torch::Tensor previousRaw, previousSteady;
  for (int t = 0; t < 6; ++t) {
    const torch::Tensor raw = model();
    const torch::Tensor steady = stabilizer(photo, raw);
    if (t > 0) {
      change.raw += (raw - previousRaw).abs().mean().item<double>();
      change.steady += (steady - previousSteady).abs().mean().item<double>();
    }
    previousRaw = raw;
    previousSteady = steady;
  }
  return change;
}

TEST(FrameStabilizer, SmoothsFlickerWhereTheInputStaysAndNotWhereItChanges) {
  torch::manual_seed(5);
  const torch::Tensor photo = stillPhoto();
  FrameStabilizer stabilizer(0.7);
  const FrameChange change = changeThroughStabilizer(stabilizer, photo, [] { return torch::rand({3, 48, 64}); });
  EXPECT_LT(change.steady, 0.5 * change.raw);
  // New content (the input changed everywhere): the model's output passes through.
  const torch::Tensor other = 1 - photo, raw = torch::rand({3, 48, 64});
  EXPECT_LT((stabilizer(other, raw) - raw).abs().max().item<float>(), 0.02);
  EXPECT_THROW(FrameStabilizer(1.5), Error);
}

TEST(FrameStabilizer, AGateSmoothsSmallWobbleAndPassesRepaintedStrokes) {
  torch::manual_seed(6);
  const torch::Tensor photo = stillPhoto();
  const torch::Tensor painting = torch::rand({3, 48, 64}).mul(0.5).add(0.25);
  FrameStabilizer gated(0.9, 0.06), plain(0.9);
  // Small wobble (±0.02) around one painting: the gate lets the blend act.
  const FrameChange change = changeThroughStabilizer(gated, photo, [&] {
    return painting + (torch::rand({3, 48, 64}) - 0.5) * 0.04;
  });
  EXPECT_LT(change.steady, 0.6 * change.raw);
  // Repainted strokes (a change of 0.4 per channel) pass the gate nearly as they are; without a gate they
  // are blended 9:1 with the previous picture.
  plain(photo, painting);
  const torch::Tensor repainted =
      (painting + 0.4).clamp(0, 1) * (painting < 0.5) + (painting - 0.4) * (painting >= 0.5);
  EXPECT_LT((gated(photo, repainted) - repainted).abs().max().item<float>(), 0.01);
  EXPECT_GT((plain(photo, repainted) - repainted).abs().mean().item<float>(), 0.2);
  EXPECT_THROW(FrameStabilizer(0.5, 1.5), Error);
}

TEST(FrameStabilizer, AModelsRecommendationAppliesOnlyWhenNeitherFlagIsGiven) {
  const VideoDefaults model{0.8, 0.06};
  const auto same = [](const VideoDefaults& a, double stabilize, double gate) {
    return a.stabilize == stabilize && a.stabilizeGate == gate;
  };
  EXPECT_TRUE(same(chooseStabilize(std::nullopt, std::nullopt, model), 0.8, 0.06));
  EXPECT_TRUE(same(chooseStabilize(0.0, std::nullopt, model), 0, 0));    // --stabilize=0: off
  EXPECT_TRUE(same(chooseStabilize(0.7, std::nullopt, model), 0.7, 0));  // as for any model: no gate
  EXPECT_TRUE(same(chooseStabilize(std::nullopt, 0.1, model), 0.8, 0.1));
  EXPECT_TRUE(same(chooseStabilize(std::nullopt, 0.1, VideoDefaults{}), 0.7, 0.1));
  EXPECT_TRUE(same(chooseStabilize(std::nullopt, std::nullopt, VideoDefaults{}), 0, 0));
}

TEST_F(VideoTest, AModelsRecommendedSmoothingIsWhatAVideoGetsUnlessTheJobSaysOtherwise) {
  StyleModel tiny = loadStyleModel(dir_ / "tiny.safetensors");
  tiny.info["video"] = videoDefaultsJson({0.9, 0});
  saveStyleModel(dir_ / "steady.safetensors", tiny.net, tiny.info);
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(4, 10);
  spec.motionX = 1;  // a moving texture: its flow is found, so the smoothing has something to blend
  test::writeTestVideo(dir_ / "in.mkv", spec);
  const auto frames = [&](const std::filesystem::path& model, std::optional<double> stabilize) {
    Stylizer s(model, torch::kCPU);
    VideoJob job;
    job.input = (dir_ / "in.mkv").string();
    job.output = dir_ / "out.mkv";
    job.stabilize = stabilize;
    std::vector<torch::Tensor> shown;
    VideoCallbacks callbacks;
    callbacks.frame = [&](const AVFrame&, const AVFrame& rgb) {
      shown.push_back(framesToTensor({&rgb}, torch::kCPU)[0]);
      return true;
    };
    stylizeVideo(s, job, callbacks);
    return torch::stack(shown);
  };
  // The same computation twice; at most one 8-bit level apart, should a kernel round differently.
  const auto near = [](const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().max().item<float>() <= 1.0f / 255 + 1e-6f;
  };
  const torch::Tensor recommended = frames(dir_ / "steady.safetensors", std::nullopt);
  EXPECT_TRUE(near(recommended, frames(dir_ / "tiny.safetensors", 0.9)));
  const torch::Tensor off = frames(dir_ / "steady.safetensors", 0.0);
  EXPECT_TRUE(near(off, frames(dir_ / "tiny.safetensors", std::nullopt)));
  EXPECT_FALSE(near(off, recommended));
}

// A lossless 96×64 still picture: decoded exactly as written, so any error the metric reports is its own.
test::VideoSpec losslessStill(int frames) {
  test::VideoSpec still;
  still.width = 96;
  still.height = 64;
  still.framesMs = test::constantRate(frames, 25);
  still.still = true;
  still.lossless = true;
  return still;
}

TEST(Flicker, ZeroForAStillVideoAndExactOnATranslation) {
  test::TempDir dir;
  av::quietLogs();
  const test::VideoSpec still = losslessStill(5);
  test::writeTestVideo(dir / "still.mkv", still);
  const FlickerResult same = warpingError((dir / "still.mkv").string(), (dir / "still.mkv").string());
  EXPECT_EQ(same.pairs, 4);
  EXPECT_EQ(same.inputError, 0);
  EXPECT_DOUBLE_EQ(same.outputError, same.inputError);

  test::VideoSpec pan = still;
  pan.still = false;
  pan.motionX = 2;
  pan.framesMs = test::constantRate(8, 25);
  test::writeTestVideo(dir / "pan.mkv", pan);
  const std::string path = (dir / "pan.mkv").string();
  FlickerOptions exact;
  exact.exactMotion = std::make_pair(2.0, 0.0);
  const FlickerResult withExact = warpingError(path, path, exact);
  const FlickerResult withFlow = warpingError(path, path);
  FlickerOptions wrong;
  wrong.exactMotion = std::make_pair(0.0, 0.0);
  const FlickerResult withoutMotion = warpingError(path, path, wrong);
  EXPECT_LT(withExact.inputError, 2e-4);
  EXPECT_GT(withoutMotion.inputError, 50 * withExact.inputError);   // the motion is real and large
  EXPECT_LT(withFlow.inputError, 3 * withExact.inputError + 1e-5);  // the estimator finds it
  EXPECT_GT(withFlow.validFraction, 0.8);

  // The split by motion: a still input's pixels are all still, so whatever changes in its stylized video is
  // its answer to noise; a pan's are all moving.
  EXPECT_NEAR(same.stillFraction, 1, 1e-9);
  EXPECT_EQ(withExact.stillFraction, 0);
  EXPECT_EQ(withExact.outputStillError, 0);
  EXPECT_NEAR(withExact.outputMovingError, withExact.outputError, 1e-9 + 1e-6 * withExact.outputError);
  const FlickerResult restless = warpingError((dir / "still.mkv").string(), path);  // the pan as a "stylized" still
  EXPECT_GT(restless.outputError, 50 * withExact.inputError);
  EXPECT_NEAR(restless.stillFraction, 1, 1e-9);
  EXPECT_NEAR(restless.outputStillError, restless.outputError, 1e-6 * restless.outputError);
  EXPECT_EQ(restless.outputMovingError, 0);
  for (const FramePairError& pair : restless.perPair) {  // each pair's own split, as `--per-pair` prints it
    EXPECT_NEAR(pair.stillFraction(), 1, 1e-9);
    EXPECT_NEAR(pair.outputStillError(), pair.outputError, 1e-6 * pair.outputError + 1e-12);
  }
}

TEST(Flicker, AShotChangeIsLeftOutNotCountedAsFlicker) {
  test::TempDir dir;
  av::quietLogs();
  test::VideoSpec shots = losslessStill(6);
  shots.cutAt = 3;
  test::writeTestVideo(dir / "shots.mkv", shots);
  const std::string path = (dir / "shots.mkv").string();
  const FlickerResult r = warpingError(path, path);
  EXPECT_EQ(r.pairs, 4);
  EXPECT_EQ(r.cuts, 1);
  ASSERT_EQ(r.perPair.size(), 5u);
  EXPECT_TRUE(r.perPair[2].cut);
  EXPECT_EQ(r.perPair[2].frame, 3);
  EXPECT_LT(r.perPair[2].validFraction, 0.05);  // the flow connects nothing across the cut
  EXPECT_EQ(r.inputError, 0);                   // two still shots: nothing moves within either
  EXPECT_NEAR(r.validFraction, 1, 1e-9);        // the mean is over the four pairs inside the shots

  FlickerOptions keepAll;
  keepAll.skipCuts = false;
  const FlickerResult counted = warpingError(path, path, keepAll);
  EXPECT_EQ(counted.pairs, 5);
  EXPECT_EQ(counted.cuts, 0);
  EXPECT_LT(counted.validFraction, 0.85);
}

}  // namespace
}  // namespace stylize
