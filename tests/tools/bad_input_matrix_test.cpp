// The bad-input matrix of `stylize video`: generated inputs over containers, codecs, pixel formats, odd
// sizes, rotation, variable frame rate, timestamp offsets and resets, audio and subtitle codecs per output
// container, truncation, garbage and paths. Each case states what it must give: the output's exact
// properties, or a one-line error naming the problem with nothing written.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <functional>
#include <set>

#include "data/files.h"
#include "data/image.h"
#include "nets/style_model.h"
#include "tests/infer/video_fixture.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

namespace fs = std::filesystem;

struct Expect {
  int width = 64, height = 48;
  int minFrames = 10, maxFrames = 10;
  std::string videoCodec = "h264", pixelFormat = "yuv420p";
  std::string audioCodec;     // "" = no audio stream; "input" = the input's (copied)
  std::string subtitleCodec;  // "" = no subtitle stream
  int subtitlePackets = 0;    // -1 = as many as the input holds
  double rotation = 0;        // in degrees, either sign: the output's must also equal the input's
  // When given: these steps between frames exactly (±1 ms), the first within 50 ms (an audio stream that
  // starts a little earlier keeps its lead, as with `ffmpeg -c copy`).
  std::vector<double> frameTimes;
  std::string note;  // a line the console must show (a warning)
};

struct MatrixCase {
  std::string name;
  std::function<void(const fs::path&)> make;  // writes the input(s) into the case's folder
  std::string input, output, flags;
  std::string error;  // non-empty: exit 1, the last line says this, nothing is written
  Expect expect;
};

std::ostream& operator<<(std::ostream& os, const MatrixCase& c) { return os << c.name; }

test::VideoSpec clip(int frames = 10) {
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(frames, 25);
  return spec;
}

std::function<void(const fs::path&)> writes(const std::string& name, test::VideoSpec spec) {
  return [name, spec](const fs::path& dir) { test::writeTestVideo(dir / name, spec); };
}

test::VideoSpec withAudio(test::VideoSpec spec, AVCodecID codec) {
  spec.audio = true;
  spec.audioCodec = codec;
  return spec;
}

test::VideoSpec coded(test::VideoSpec spec, AVCodecID codec, AVPixelFormat format = AV_PIX_FMT_YUV420P) {
  spec.videoCodec = codec;
  spec.pixelFormat = format;
  return spec;
}

Expect withAudioCodec(const std::string& codec, Expect e = {}) {
  e.audioCodec = codec;
  return e;
}

Expect error() { return {}; }

std::vector<MatrixCase> matrixCases() {
  std::vector<MatrixCase> cases;
  const auto add = [&](MatrixCase c) { cases.push_back(std::move(c)); };

  // Containers, codecs and audio per output container.
  add({"Mpeg4AacMp4ToMp4", writes("in.mp4", withAudio(clip(), AV_CODEC_ID_AAC)), "in.mp4", "out.mp4", "", "",
       withAudioCodec("aac")});
  add({"Ffv1FlacMkvToMkv", writes("in.mkv", withAudio(coded(clip(), AV_CODEC_ID_FFV1), AV_CODEC_ID_FLAC)), "in.mkv",
       "out.mkv", "", "", withAudioCodec("flac")});
  add({"FlacMkvToMp4ReencodesAac", writes("in.mkv", withAudio(coded(clip(), AV_CODEC_ID_FFV1), AV_CODEC_ID_FLAC)),
       "in.mkv", "out.mp4", "", "", withAudioCodec("aac")});
  add({"PcmMkvToMp4ReencodesAac", writes("in.mkv", withAudio(clip(), AV_CODEC_ID_PCM_S16LE)), "in.mkv", "out.mp4", "",
       "", withAudioCodec("aac")});
  add({"PcmMovToMovCopies", writes("in.mov", withAudio(clip(), AV_CODEC_ID_PCM_S16LE)), "in.mov", "out.mov", "", "",
       withAudioCodec("pcm_s16le")});
  {
    Expect e = withAudioCodec("opus");
    e.videoCodec = "vp9";
    add({"AacMp4ToWebmReencodesOpus", writes("in.mp4", withAudio(clip(), AV_CODEC_ID_AAC)), "in.mp4", "out.webm", "",
         "", e});
  }
  add({"Mp2AviToMkv", writes("in.avi", withAudio(clip(), AV_CODEC_ID_MP2)), "in.avi", "out.mkv", "", "",
       withAudioCodec("input")});
  {
    test::VideoSpec spec = withAudio(coded(clip(25), AV_CODEC_ID_MPEG2VIDEO), AV_CODEC_ID_MP2);
    for (int64_t& ms : spec.framesMs) ms += 3000;  // MPEG-TS captures rarely start at 0
    spec.audioStartMs = 3000;
    Expect e = withAudioCodec("input");
    e.minFrames = e.maxFrames = 25;
    for (int i = 0; i < 25; ++i) e.frameTimes.push_back(i * 0.04);
    add({"Mpeg2TsStartingAt3sStartsAt0", writes("in.ts", spec), "in.ts", "out.mp4", "", "", e});
    Expect window = e;
    window.minFrames = window.maxFrames = 10;
    window.frameTimes.resize(10);
    add({"WindowOfAnOffsetTsCountsFromItsStart", writes("in.ts", spec), "in.ts", "out.mkv",
         "--start 0.4 --duration 0.4", "", window});
  }
  {
    Expect e = withAudioCodec("aac");
    e.minFrames = e.maxFrames = 50;
    for (int i = 0; i < 50; ++i) e.frameTimes.push_back(i * 0.04);
    add({"TsWhoseClockJumpsBackwardsIsOneTimeline",
         [](const fs::path& dir) {
           test::writeTestVideo(dir / "a.ts", withAudio(clip(25), AV_CODEC_ID_AAC));  // 1 s of each
           std::ofstream(dir / "in.ts", std::ios::binary) << readFile(dir / "a.ts") << readFile(dir / "a.ts");
         },
         "in.ts", "out.mp4", "", "", e});
  }
  {
    Expect e;
    e.minFrames = e.maxFrames = 6;
    add({"PngSequence",
         [](const fs::path& dir) {
           for (int i = 1; i <= 6; ++i)
             saveImage(dir / fmt::format("img{:03d}.png", i), torch::rand({3, 48, 64}, torch::kFloat32));
         },
         "img%03d.png", "out.mp4", "", "", e});
  }
  add({"Gif", writes("in.gif", coded(clip(), AV_CODEC_ID_GIF, AV_PIX_FMT_RGB8)), "in.gif", "out.mp4", "", "", {}});
  add({"MjpegFullRangeAvi",
       writes("in.avi", coded(clip(), AV_CODEC_ID_MJPEG, AV_PIX_FMT_YUVJ420P)),
       "in.avi",
       "out.mp4",
       "",
       "",
       {}});
  add({"Rgb24HuffyuvAvi",
       writes("in.avi", coded(clip(), AV_CODEC_ID_HUFFYUV, AV_PIX_FMT_RGB24)),
       "in.avi",
       "out.mp4",
       "",
       "",
       {}});
  {
    // Without a GPU (CI): a note and software decoding; with one: decoded by NVDEC. Either way, the video.
    Expect e;
    e.note = "decoding";
    add({"HwaccelCudaDecodesOrFallsBackWithANote", writes("in.mp4", clip()), "in.mp4", "out.mp4", "--hwaccel cuda", "",
         e});
  }
  add({"HalfPrecisionOnTheCpu", writes("in.mp4", clip()), "in.mp4", "out.mp4", "--device cpu --precision bf16",
       "bf16 needs a CUDA device", error()});
  add({"UnknownPrecision", writes("in.mp4", clip()), "in.mp4", "out.mp4", "--precision fp8",
       "--precision must be fp32, fp16 or bf16, not 'fp8'", error()});
  add({"HwaccelUnknown", writes("in.mp4", clip()), "in.mp4", "out.mp4", "--hwaccel gpu",
       "--hwaccel must be auto, none or cuda, not 'gpu'", error()});
  // Pixel formats: 4:4:4, 10-bit, grey.
  add({"Yuv444Source",
       writes("in.mkv", coded(clip(), AV_CODEC_ID_FFV1, AV_PIX_FMT_YUV444P)),
       "in.mkv",
       "out.mp4",
       "",
       "",
       {}});
  add({"TenBitSource",
       writes("in.mkv", coded(clip(), AV_CODEC_ID_FFV1, AV_PIX_FMT_YUV420P10LE)),
       "in.mkv",
       "out.mp4",
       "",
       "",
       {}});
  add({"GreySource",
       writes("in.mkv", coded(clip(), AV_CODEC_ID_FFV1, AV_PIX_FMT_GRAY8)),
       "in.mkv",
       "out.mp4",
       "",
       "",
       {}});
  // Sizes.
  {
    test::VideoSpec spec = coded(clip(), AV_CODEC_ID_FFV1);
    spec.width = 63, spec.height = 47;
    Expect even;
    even.width = 62, even.height = 46;
    add({"OddSizeDropsARowAndColumnForYuv420", writes("in.mkv", spec), "in.mkv", "out.mp4", "", "", even});
    Expect kept;
    kept.width = 63, kept.height = 47, kept.pixelFormat = "yuv444p";
    add({"OddSizeKeptInYuv444", writes("in.mkv", spec), "in.mkv", "out.mp4", "--pix-fmt yuv444p", "", kept});
    spec.width = 4, spec.height = 2;
    Expect tiny;
    tiny.width = 4, tiny.height = 2;
    add({"FourByTwoPixels", writes("in.mkv", spec), "in.mkv", "out.mkv", "", "", tiny});
  }
  // Rotation and timing.
  {
    test::VideoSpec spec = clip();
    spec.rotation = 90;
    Expect e;
    e.rotation = 90;
    add({"RotationIsKept", writes("in.mp4", spec), "in.mp4", "out.mp4", "", "", e});
  }
  {
    test::VideoSpec spec = clip();
    spec.framesMs = {0, 40, 100, 110, 300, 310, 500, 540, 600, 1000};
    Expect e;
    for (int64_t ms : spec.framesMs) e.frameTimes.push_back(ms / 1000.0);
    add({"VariableFrameRateIsKept", writes("in.mkv", spec), "in.mkv", "out.mkv", "", "", e});
  }
  // Subtitles per output container.
  {
    test::VideoSpec spec = coded(clip(), AV_CODEC_ID_FFV1);
    spec.subtitleCodec = AV_CODEC_ID_SUBRIP;
    Expect kept;
    kept.subtitleCodec = "subrip", kept.subtitlePackets = 3;
    add({"SubripInMkvToMkvIsCopied", writes("in.mkv", spec), "in.mkv", "out.mkv", "", "", kept});
    Expect left;
    left.note = "subrip";
    add({"SubripInMkvToMp4IsLeftOutWithAWarning", writes("in.mkv", spec), "in.mkv", "out.mp4", "", "", left});
    spec.subtitleCodec = AV_CODEC_ID_MOV_TEXT;
    spec.videoCodec = AV_CODEC_ID_MPEG4;
    Expect movText;
    movText.subtitleCodec = "mov_text", movText.subtitlePackets = 3;
    add({"MovTextInMp4ToMp4IsCopied", writes("in.mp4", spec), "in.mp4", "out.mp4", "", "", movText});
  }
  // Damage: corrupt packets are skipped, anything unreadable is a one-line error.
  {
    Expect e;
    e.minFrames = 20, e.maxFrames = 30;
    add({"CorruptPacketsMidStreamAreSkipped",
         [](const fs::path& dir) {
           test::writeTestVideo(dir / "whole.mkv", clip(30));
           std::string bytes = readFile(dir / "whole.mkv");
           for (size_t i = bytes.size() / 3; i < bytes.size() / 3 + 400; ++i) bytes[i] = char(i * 131);
           std::ofstream(dir / "in.mkv", std::ios::binary) << bytes;
         },
         "in.mkv", "out.mp4", "", "", e});
  }
  add({"TruncatedMp4",
       [](const fs::path& dir) {
         test::writeTestVideo(dir / "whole.mp4", clip());
         const std::string bytes = readFile(dir / "whole.mp4");
         std::ofstream(dir / "in.mp4", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
       },
       "in.mp4", "out.mp4", "", "in.mp4: cannot open", error()});
  add({"GarbageBytes",
       [](const fs::path& dir) {
         std::string bytes(20000, '\0');
         for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 2654435761u) >> 13);
         std::ofstream(dir / "in.mp4", std::ios::binary) << bytes;
       },
       "in.mp4", "out.mp4", "", "in.mp4: cannot open", error()});
  add({"EmptyFile", [](const fs::path& dir) { std::ofstream(dir / "in.mp4").flush(); }, "in.mp4", "out.mp4", "",
       "in.mp4: cannot open", error()});
  add({"AudioOnly",
       [](const fs::path& dir) {
         test::VideoSpec spec;
         spec.video = false;
         spec.audio = true;
         test::writeTestVideo(dir / "in.m4a", spec);
       },
       "in.m4a", "out.mp4", "", "in.m4a: has no video stream", error()});
  // Paths.
  add({"MissingInput", [](const fs::path&) {}, "in.mp4", "out.mp4", "", "in.mp4: cannot open", error()});
  add({"FolderAsInput", [](const fs::path& dir) { fs::create_directories(dir / "in.mp4"); }, "in.mp4", "out.mp4", "",
       "in.mp4: cannot open: Is a directory", error()});
  add({"OutputFolderMissing", writes("in.mp4", clip()), "in.mp4", "no/such/out.mp4", "", "does not exist", error()});
  add({"OutputUnderARegularFile", writes("in.mp4", clip()), "in.mp4", "in.mp4/out.mp4", "",
       "in.mp4 is a file, not a folder", error()});
  add({"OutputIsAFolder", writes("in.mp4", clip()), "in.mp4", ".", "", "is a directory, expected a file name",
       error()});
  add({"OutputHardLinkedToTheInput",
       [](const fs::path& dir) {
         test::writeTestVideo(dir / "in.mp4", clip());
         fs::create_hard_link(dir / "in.mp4", dir / "link.mp4");
       },
       "in.mp4", "link.mp4", "", "would overwrite the input", error()});
  add({"OutputSymlinkedToTheInput",
       [](const fs::path& dir) {
         test::writeTestVideo(dir / "in.mp4", clip());
         fs::create_symlink(dir / "in.mp4", dir / "link.mp4");
       },
       "in.mp4", "link.mp4", "", "would overwrite the input", error()});
  add({"UnknownOutputContainer", writes("in.mp4", clip()), "in.mp4", "out.xyz", "", "unknown video container",
       error()});
  add({"StartPastTheEnd", writes("in.mp4", clip()), "in.mp4", "out.mp4", "--start 5", "past the end of the video",
       error()});
  add({"ModelIsNotAModel", writes("in.mp4", clip()), "in.mp4", "out.mp4", "--model in.mp4", "in.mp4: header length",
       error()});
  return cases;
}

class BadInputMatrix : public ::testing::TestWithParam<MatrixCase> {
 protected:
  static void SetUpTestSuite() {
    av::quietLogs();
    models_ = new test::TempDir;
    torch::manual_seed(1);
    TransformerNet net(TransformerConfig{8, 1});
    saveStyleModel(*models_ / "m.safetensors", net, {});
  }
  static void TearDownTestSuite() {
    delete models_;
    models_ = nullptr;
  }
  static test::TempDir* models_;
  test::TempDir dir_;
};
test::TempDir* BadInputMatrix::models_ = nullptr;

TEST_P(BadInputMatrix, GivesWhatItMust) {
  const MatrixCase& c = GetParam();
  c.make(dir_.path());
  std::set<fs::path> before;
  for (const auto& e : fs::directory_iterator(dir_.path())) before.insert(e.path());
  const std::string model =
      c.flags.find("--model") == std::string::npos ? " --model '" + (*models_ / "m.safetensors").string() + "'" : "";
  // Relative paths, run from the case's folder, as a user types them.
  const auto r = test::runStylize("video '" + c.input + "' -o '" + c.output + "' " + c.flags + model, dir_.path(),
                                  "sh -c 'cd \"$1\" && shift && exec \"$@\"' sh '" + dir_.path().string() + "'");
  if (!c.error.empty()) {
    EXPECT_EQ(r.exitCode, 1) << r.output;
    std::string last = r.output;
    while (!last.empty() && last.back() == '\n') last.pop_back();
    last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
    EXPECT_NE(last.find(c.error), std::string::npos) << r.output;
    EXPECT_EQ(last.find("what()"), std::string::npos) << r.output;
    std::set<fs::path> after;
    for (const auto& e : fs::directory_iterator(dir_.path())) after.insert(e.path());
    EXPECT_EQ(after, before) << "an error must write nothing";
    return;
  }
  ASSERT_EQ(r.exitCode, 0) << r.output;
  const Expect& e = c.expect;
  if (!e.note.empty()) {
    EXPECT_NE(r.output.find(e.note), std::string::npos) << r.output;
  }
  const auto out = test::readVideoContents(dir_ / c.output);
  const bool oneFile = c.input.find('%') == std::string::npos;
  const auto in = oneFile ? test::readVideoContents(dir_ / c.input) : test::VideoContents{};
  EXPECT_EQ(out.width, e.width);
  EXPECT_EQ(out.height, e.height);
  EXPECT_GE(int(out.frameTimes.size()), e.minFrames);
  EXPECT_LE(int(out.frameTimes.size()), e.maxFrames);
  EXPECT_EQ(out.videoCodec, e.videoCodec);
  EXPECT_EQ(out.pixelFormat, e.pixelFormat);
  // MP4, AVI and MPEG-TS tag MPEG audio layers 2 and 3 alike: FFmpeg reads MP2 back as "mp3" from some.
  const auto mpegAudio = [](std::string codec) { return codec == "mp2" ? std::string("mp3") : codec; };
  EXPECT_EQ(mpegAudio(out.audioCodec), mpegAudio(e.audioCodec == "input" ? in.audioCodec : e.audioCodec));
  if (!e.audioCodec.empty()) {
    EXPECT_FALSE(out.audioPackets.empty());
  }
  EXPECT_EQ(out.subtitleCodec, e.subtitleCodec);
  EXPECT_EQ(out.subtitlePackets, e.subtitlePackets < 0 ? in.subtitlePackets : e.subtitlePackets);
  EXPECT_NEAR(std::abs(out.rotation), e.rotation, 1e-6);
  EXPECT_NEAR(out.rotation, in.rotation, 1e-6);
  if (!e.frameTimes.empty()) {
    ASSERT_EQ(out.frameTimes.size(), e.frameTimes.size());
    EXPECT_NEAR(out.frameTimes[0], e.frameTimes[0], 0.05);
    for (size_t i = 1; i < e.frameTimes.size(); ++i)
      EXPECT_NEAR(out.frameTimes[i] - out.frameTimes[0], e.frameTimes[i] - e.frameTimes[0], 1e-3) << i;
  }
  for (size_t i = 1; i < out.frameTimes.size(); ++i) EXPECT_GT(out.frameTimes[i], out.frameTimes[i - 1]) << i;
  for (const auto& entry : fs::directory_iterator(dir_.path()))
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
}

INSTANTIATE_TEST_SUITE_P(Video, BadInputMatrix, ::testing::ValuesIn(matrixCases()),
                         [](const ::testing::TestParamInfo<MatrixCase>& info) { return info.param.name; });

}  // namespace
}  // namespace stylize
