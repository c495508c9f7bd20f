// The command line as a user meets it: exit codes, one-line errors that name the file, outputs that
// appear whole or not at all.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <fstream>
#include <random>
#include <sstream>

#include "data/files.h"
#include "data/image.h"
#include "nets/style_model.h"
#include "tests/test_util.h"
#ifdef STYLIZE_HAVE_VIDEO
#include "infer/video_decoder.h"
#include "tests/infer/video_fixture.h"
#endif

namespace stylize {
namespace {

using test::runStylize;

std::string lastLine(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

TEST(Cli, UsageAndUnknownCommand) {
  test::TempDir dir;
  const auto none = runStylize("", dir.path());
  EXPECT_EQ(none.exitCode, 2);
  EXPECT_NE(none.output.find("usage: stylize <command>"), std::string::npos);
  const auto help = runStylize("optimize --help", dir.path());
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_NE(help.output.find("--style-layers"), std::string::npos);
  const auto bad = runStylize("frobnicate", dir.path());
  EXPECT_EQ(bad.exitCode, 2);
  EXPECT_NE(bad.output.find("unknown command \"frobnicate\""), std::string::npos);
}

// libgomp reads OMP_WAIT_POLICY when it is loaded: stylize starts itself again once with it set (passive
// waiting: a spin count of 0), unless the user set it or STYLIZE_OMP=active; libgomp starts once either way.
TEST(Cli, OpenMpGetsItsLoadTimeSettingOnce) {
  test::TempDir dir;
  const auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  auto r = runStylize("--version", dir.path(), "env -u OMP_WAIT_POLICY -u STYLIZE_OMP OMP_DISPLAY_ENV=verbose");
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_EQ(count(r.output, "OPENMP DISPLAY ENVIRONMENT BEGIN"), 1u) << r.output;
  EXPECT_EQ(count(r.output, "GOMP_SPINCOUNT = '0'"), 1u) << r.output;
  r = runStylize("--version", dir.path(), "env -u OMP_WAIT_POLICY STYLIZE_OMP=active OMP_DISPLAY_ENV=verbose");
  EXPECT_EQ(count(r.output, "OPENMP DISPLAY ENVIRONMENT BEGIN"), 1u) << r.output;
  EXPECT_EQ(count(r.output, "GOMP_SPINCOUNT = '0'"), 0u) << r.output;
  r = runStylize("--version", dir.path(), "env OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose");
  EXPECT_NE(r.output.find("OMP_WAIT_POLICY = 'ACTIVE'"), std::string::npos) << r.output;
}

TEST(Cli, OutputsNeverOverwriteAnInputAndStrayArgumentsAreErrors) {
  namespace fs = std::filesystem;
  test::TempDir dir;
  torch::manual_seed(1);
  TransformerNet net(TransformerConfig{8, 1});
  saveStyleModel(dir / "m.safetensors", net, {});
  const std::string model = " --model '" + (dir / "m.safetensors").string() + "'";
  for (const char* sub : {"in", "a", "b"}) fs::create_directories(dir / sub);
  const fs::path x = dir / "in" / "x.png";
  saveImage(x, torch::rand({3, 24, 32}));
  saveImage(dir / "a" / "p.png", torch::rand({3, 24, 32}));
  saveImage(dir / "b" / "p.png", torch::rand({3, 24, 32}));
  std::ofstream(dir / "in" / "v.mp4") << "not decoded: refused before it is opened";
  fs::create_symlink(x, dir / "link.png");
  const std::string image = readFile(x), video = readFile(dir / "in" / "v.mp4");

  // The input named another way: a different relative spelling, a symlink, a hard link.
  fs::create_hard_link(dir / "in" / "v.mp4", dir / "hard.mp4");
  const std::vector<std::pair<std::string, std::string>> clashes{
      {"image '" + x.string() + "'", (dir / "in" / ".." / "in" / "x.png").string()},
      {"image '" + x.string() + "'", (dir / "link.png").string()},
      {"video '" + (dir / "in" / "v.mp4").string() + "'", (dir / "in" / "." / "v.mp4").string()},
      {"video '" + (dir / "in" / "v.mp4").string() + "'", (dir / "hard.mp4").string()},
      {"blend '" + (dir / "m.safetensors").string() + "' '" + (dir / "m.safetensors").string() + "'",
       (dir / "in" / ".." / "m.safetensors").string()},
  };
  for (const auto& [command, output] : clashes) {
    const auto r = runStylize(command + " -o '" + output + "'" + (command[0] == 'b' ? "" : model), dir.path());
    EXPECT_EQ(r.exitCode, 1) << command << " -o " << output << "\n" << r.output;
    EXPECT_NE(lastLine(r.output).find("would overwrite the input"), std::string::npos) << r.output;
  }
  EXPECT_EQ(readFile(x), image);
  EXPECT_EQ(readFile(dir / "in" / "v.mp4"), video);

  // Two inputs with one base name would write one output twice: refused before anything is written.
  const auto twice = runStylize("image '" + (dir / "a" / "p.png").string() + "' '" + (dir / "b" / "p.png").string() +
                                    "' -o '" + (dir / "out").string() + "'" + model,
                                dir.path());
  EXPECT_EQ(twice.exitCode, 1) << twice.output;
  EXPECT_NE(lastLine(twice.output).find("would be written there"), std::string::npos) << twice.output;
  EXPECT_FALSE(fs::exists(dir / "out" / "p_m.png"));

  // A word no option takes, e.g. the value of an option whose value is optional, given with a space.
  const auto stray = runStylize("video in.mp4 --stabilize 0.2 -o o.mp4" + model, dir.path());
  EXPECT_EQ(stray.exitCode, 1) << stray.output;
  EXPECT_NE(lastLine(stray.output).find("unexpected argument \"0.2\""), std::string::npos) << stray.output;
  EXPECT_NE(lastLine(stray.output).find("--option=VALUE"), std::string::npos) << stray.output;
  const auto extra = runStylize("optimize --content a.jpg --style b.jpg -o c.png leftover", dir.path());
  EXPECT_EQ(extra.exitCode, 1) << extra.output;
  EXPECT_NE(lastLine(extra.output).find("unexpected argument \"leftover\""), std::string::npos) << extra.output;
}

// A pytorch/examples model (the .pth fixture) imported, then run by `stylize image` unchanged, with the
// options of our own models; the import's errors are one line and write nothing.
TEST(Cli, ImportedModelsRunLikeOurOwn) {
  namespace fs = std::filesystem;
  test::TempDir dir;
  const fs::path fixture = test::sourceDir() / "tests" / "nets" / "fixtures" / "pytorch_examples.pth";
  const std::string model = (dir / "candy.safetensors").string();
  const auto imported = test::runStylize("import '" + fixture.string() + "' -o '" + model + "'", dir / "cache");
  ASSERT_EQ(imported.exitCode, 0) << imported.output;
  EXPECT_NE(imported.output.find("8 wide, 5 residual blocks, from pth"), std::string::npos) << imported.output;
  saveImage(dir / "photo.png", torch::rand({3, 37, 29}));
  const auto run = test::runStylize("image --model '" + model + "' --preserve-colors --strength 0.8 '" +
                                        (dir / "photo.png").string() + "' -o '" + (dir / "out.png").string() + "'",
                                    dir / "cache");
  ASSERT_EQ(run.exitCode, 0) << run.output;
  EXPECT_EQ(loadImage(dir / "out.png").sizes(), (std::vector<int64_t>{3, 37, 29}));

  const auto missing = test::runStylize(
      "import '" + (dir / "none.pth").string() + "' -o '" + (dir / "x.safetensors").string() + "'", dir / "cache");
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_NE(missing.output.find("none.pth: no such file"), std::string::npos) << missing.output;
  const auto noOutput = test::runStylize("import '" + fixture.string() + "'", dir / "cache");
  EXPECT_EQ(noOutput.exitCode, 1);
  EXPECT_NE(noOutput.output.find("-o OUTPUT.safetensors is required"), std::string::npos) << noOutput.output;
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));
}

TEST(Cli, OptimizeErrorsAreOneLineAndNameTheProblem) {
  test::TempDir dir;
  saveImage(dir / "c.png", torch::rand({3, 40, 40}));
  const std::string c = (dir / "c.png").string(), out = (dir / "out.png").string();

  auto r = runStylize("optimize --style " + c + " -o " + out, dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(lastLine(r.output), "stylize: error: stylize optimize: --content is required (see --help)");

  r = runStylize("optimize --content " + (dir / "nope.jpg").string() + " --style " + c + " -o " + out, dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(lastLine(r.output), "stylize: error: " + (dir / "nope.jpg").string() + ": no such file");

  r = runStylize("optimize --content " + c + " --style " + c + " -o " + (dir / "out.gif").string(), dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.output.find("out.gif: unknown image extension"), std::string::npos) << r.output;

  r = runStylize("optimize --content " + c + " --style " + c + " -o " + out + " --optimizer sgd", dir.path());
  EXPECT_NE(r.output.find("--optimizer sgd: use lbfgs or adam"), std::string::npos) << r.output;

  r = runStylize("optimize --content " + c + " --style " + c + " -o " + out + " --iterations", dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.output.find("(see --help)"), std::string::npos) << r.output;

  r = runStylize("optimize --content " + c + " --style " + c + " -o " + out + " --vgg " + c, dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.output.find(c + ": header length"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(Cli, MissingVggLayerNamesLayerAndFile) {
  STYLIZE_REQUIRE_SHARED(test::sharedVgg());
  test::TempDir dir;
  saveImage(dir / "c.png", torch::rand({3, 40, 40}));
  const std::string c = (dir / "c.png").string();
  const auto r = runStylize("optimize --content " + c + " --style " + c + " -o " + (dir / "o.png").string() +
                                " --vgg " + test::sharedVgg().string() + " --content-layers relu4_2",
                            dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(lastLine(r.output).find(
                "vgg19_conv1_1-conv3_4.safetensors has only conv1_1..conv3_4; layer relu4_2 needs conv4_2"),
            std::string::npos)
      << r.output;
}

TEST(Cli, OptimizeWritesTheOutputAndIntermediates) {
  STYLIZE_REQUIRE_SHARED(test::sharedVgg());
  test::TempDir dir;
  const auto content = test::sharedDir() / "data/reference/extra_content_jcjohnson_neural-style/golden_gate.jpg";
  const auto style = test::sharedDir() / "data/styles/jcjohnson_fast-neural-style/the_scream.jpg";
  const auto out = dir / "result.jpg";
  const auto r =
      runStylize("optimize --content " + content.string() + " --style " + style.string() + " -o " + out.string() +
                     " --size 64 --iterations 20 --save-every 10 --vgg " + test::sharedVgg().string(),
                 dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_NE(r.output.find("loss content relu3_1:1"), std::string::npos) << r.output;  // defaults printed
  const torch::Tensor image = loadImage(out);
  EXPECT_EQ(std::max(image.size(1), image.size(2)), 64);
  EXPECT_TRUE(std::filesystem::exists(dir / "result_00010.jpg"));
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

// A tiny but complete training run through the CLI, with a random-weight VGG prefix so it takes seconds.
class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    writeSafetensors(dir / "vgg.safetensors", test::randomVgg(4));
    std::filesystem::create_directories(dir / "photos");
    for (int i = 0; i < 8; ++i) saveImage(dir / ("photos/p" + std::to_string(i) + ".jpg"), torch::rand({3, 40, 52}));
    writeFileAtomically(dir / "photos/corrupt.jpg", "\xFF\xD8 truncated");
    saveImage(dir / "style.png", torch::rand({3, 64, 64}));
  }
  std::string trainArgs(const std::string& extra) const {
    return "train --style " + (dir / "style.png").string() + " --dataset " + (dir / "photos").string() + " -o " +
           (dir / "m.safetensors").string() + " --vgg " + (dir / "vgg.safetensors").string() +
           " --content-layers relu2_2 --style-layers relu1_1,relu2_1 --width 8 --blocks 1 --batch-size 2"
           " --image-size 32 --style-size 64 --validation 2 --seed 3 " +
           extra;
  }
  test::TempDir dir;
};

TEST_F(TrainCli, TrainsWritesLogsAndTheModelStylizesImages) {
  auto r = runStylize(trainArgs("--iterations 8 --log-every 4 --checkpoint-every 4"), dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipping"), std::string::npos) << r.output;  // the corrupt photo
  for (const char* f : {"m.safetensors", "m.log.csv", "m.validation.png", "m.loss.png", "m.ckpt.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
  EXPECT_EQ(std::count(std::istreambuf_iterator<char>(*std::make_unique<std::ifstream>(dir / "m.log.csv")), {}, '\n'),
            3);

  saveImage(dir / "odd.png", torch::rand({3, 55, 97}));
  r = runStylize("image --model " + (dir / "m.safetensors").string() + " " + (dir / "odd.png").string() + " -o " +
                     (dir / "out").string() + " --strength 0.8",
                 dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  const torch::Tensor out = loadImage(dir / "out/odd_m.png");
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({3, 55, 97}));

  r = runStylize("image --model " + (dir / "m.log.csv").string() + " " + (dir / "odd.png").string() + " -o " +
                     (dir / "x.png").string(),
                 dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.output.find("m.log.csv: header length"), std::string::npos) << r.output;
}

TEST_F(TrainCli, TemporalFineTuneStartsFromAModelAndLogsTheTemporalTerm) {
  ASSERT_EQ(runStylize(trainArgs("--iterations 2"), dir.path()).exitCode, 0);
  std::filesystem::rename(dir / "m.safetensors", dir / "base.safetensors");
  auto r = runStylize(
      trainArgs("--iterations 4 --log-every 2 --temporal-weight 20 --temporal-jpeg 50 --temporal-motion subpixel "
                "--crop-area 0.1 --input-denoise 0.03 --init-model " +
                (dir / "base.safetensors").string()),
      dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_NE(r.output.find(", temporal ×20 (subpixel motion, noise 0.02, JPEG 50..95)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("johnson network behind a bilateral denoiser (σ 0.03) on"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("4 iterations of 2×32² (10–100 % crops)"), std::string::npos) << r.output;
  std::ifstream csv(dir / "m.log.csv");
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  EXPECT_EQ(header, "iteration,content,style,tv,temporal,total,lr,seconds");
  std::vector<std::string> cells;
  std::stringstream cells_in(row);
  for (std::string cell; std::getline(cells_in, cell, ',');) cells.push_back(cell);
  ASSERT_EQ(cells.size(), 8u) << row;
  EXPECT_GT(std::stod(cells[4]), 0) << row;
  const auto info = loadStyleModel(dir / "m.safetensors").info;
  EXPECT_EQ(info["training"]["temporal_weight"], 20.0);
  EXPECT_EQ(info["training"]["temporal_jpeg"], 50);
  EXPECT_EQ(info["training"]["temporal_motion"], "subpixel");
  EXPECT_EQ(info["training"]["init_model"], "base.safetensors");
  EXPECT_EQ(info["training"]["crop_area"], 0.1);
  // The denoiser, added in this fine-tune, is part of the model from now on, and of its fine-tunes.
  EXPECT_EQ(info["architecture"]["denoise"], 0.03);
  EXPECT_EQ(info["version"], 4);
  std::filesystem::rename(dir / "m.safetensors", dir / "denoising.safetensors");
  r = runStylize(trainArgs("--iterations 2 --init-model " + (dir / "denoising.safetensors").string()), dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_EQ(loadStyleModel(dir / "m.safetensors").net->config().denoise, 0.03);
  r = runStylize(trainArgs("--iterations 2 --input-denoise 2"), dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.output.find("--input-denoise must be 0..1"), std::string::npos) << r.output;

  r = runStylize(trainArgs("--iterations 2 --width 16 --init-model " + (dir / "base.safetensors").string()),
                 dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.output.find("architecture differs"), std::string::npos) << r.output;

  r = runStylize(trainArgs("--iterations 2 --temporal-weight 20 --temporal-motion wobble"), dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.output.find("--temporal-motion must be shift, subpixel or affine, not 'wobble'"), std::string::npos)
      << r.output;

  r = runStylize(trainArgs("--iterations 2 --crop-area 0"), dir.path());
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.output.find("--crop-area must be in (0, 1]"), std::string::npos) << r.output;
}

TEST_F(TrainCli, BlendAveragesTwoFineTunesIntoAModelThatStylizes) {
  ASSERT_EQ(runStylize(trainArgs("--iterations 2"), dir.path()).exitCode, 0);
  std::filesystem::rename(dir / "m.safetensors", dir / "a.safetensors");
  ASSERT_EQ(runStylize(trainArgs("--iterations 2 --seed 4 --fp16"), dir.path()).exitCode, 0);
  const std::string a = (dir / "a.safetensors").string(), b = (dir / "m.safetensors").string();
  auto r = runStylize("blend " + a + " " + b + ":0.5 -o " + (dir / "mix.safetensors").string(), dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  r = runStylize("image --model " + (dir / "mix.safetensors").string() + " " + (dir / "style.png").string() + " -o " +
                     (dir / "out.png").string(),
                 dir.path());
  EXPECT_EQ(r.exitCode, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "out.png"));

  r = runStylize("blend " + a + " -o " + (dir / "one.safetensors").string(), dir.path());
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.output.find("two or more models"), std::string::npos) << r.output;

  // One model and --stabilize: a copy of the weights that video and live smooth by default.
  const std::string steady = (dir / "steady.safetensors").string();
  r = runStylize("blend " + a + " -o " + steady + " --stabilize 0.8 --stabilize-gate 0.06", dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  const StyleModel copy = loadStyleModel(steady), original = loadStyleModel(a);
  EXPECT_DOUBLE_EQ(videoDefaults(copy.info, steady).stabilize, 0.8);
  EXPECT_DOUBLE_EQ(videoDefaults(copy.info, steady).stabilizeGate, 0.06);
  const auto originalParameters = original.net->named_parameters();
  for (const auto& p : copy.net->named_parameters())
    EXPECT_TRUE(p.value().equal(originalParameters[p.key()])) << p.key();
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(3, 10);
  test::writeTestVideo(dir / "in.mkv", spec);
  const std::string video = " '" + (dir / "in.mkv").string() + "' -o '" + (dir / "out.mp4").string() + "'";
  r = runStylize("video" + video + " --model " + steady, dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_NE(r.output.find("as its model recommends (--stabilize=0.8 --stabilize-gate=0.06)"), std::string::npos)
      << r.output;
  r = runStylize("video" + video + " --stabilize=0 --model " + steady, dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_EQ(r.output.find("recommends"), std::string::npos) << r.output;
  r = runStylize("blend " + a + " -o " + (dir / "gate.safetensors").string() + " --stabilize-gate 0.1", dir.path());
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.output.find("needs --stabilize"), std::string::npos) << r.output;
  r = runStylize("blend " + a + " -o " + (dir / "gate.safetensors").string() + " --stabilize 2", dir.path());
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.output.find("video.stabilize must be a number in [0, 0.95]"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "gate.safetensors"));
  r = runStylize("blend " + a + " " + (dir / "style.png").string() + " -o " + (dir / "bad.safetensors").string(),
                 dir.path());
  EXPECT_NE(r.exitCode, 0);
  EXPECT_NE(r.output.find("style.png"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.safetensors"));
}

TEST_F(TrainCli, InterruptWritesACheckpointAndResumeFinishes) {
  // SIGINT arrives mid-run, once a trained iteration is shown: a checkpoint, exit 130, no model file.
  auto r = runStylize(trainArgs("--iterations 100000 --log-every 1"), dir.path(),
                      test::interruptOnceOutputMatches(" [1-9][0-9]*/100000 it", dir / "train.out"));
  ASSERT_EQ(r.exitCode, 130) << r.output;
  const auto at = r.output.find("interrupted at iteration ");
  ASSERT_NE(at, std::string::npos) << r.output;
  const int64_t iteration = std::stoll(r.output.substr(at + 25));
  EXPECT_TRUE(std::filesystem::exists(dir / "m.ckpt.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors"));

  // The network comes from the checkpoint: --width/--blocks need not be repeated.
  std::string resume =
      trainArgs("--iterations " + std::to_string(iteration + 2) + " --resume " + (dir / "m.ckpt.safetensors").string());
  resume.replace(resume.find(" --width 8 --blocks 1"), 21, "");
  r = runStylize(resume, dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_NE(r.output.find("resumed at iteration " + std::to_string(iteration)), std::string::npos) << r.output;
  EXPECT_EQ(loadStyleModel(dir / "m.safetensors").info["iterations"], iteration + 2);
}

// SIGKILL gives no chance to save anything: what survives is whatever was on disk, so every checkpoint
// must be complete whenever the process dies (checkpoints every iteration put many kills inside a write).
TEST_F(TrainCli, SigkillAtRandomMomentsLosesAtMostOneIntervalAndResumesToTheSameModel) {
  namespace fs = std::filesystem;
  const std::string args = trainArgs("--iterations 24 --log-every 1 --checkpoint-every 2 --threads 1");
  auto r = runStylize(args, dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  fs::rename(dir / "m.safetensors", dir / "straight.safetensors");
  fs::rename(dir / "m.log.csv", dir / "straight.log.csv");
  fs::remove(dir / "m.ckpt.safetensors");

  const auto lastLoggedIteration = [&] {
    std::ifstream csv(dir / "m.log.csv");
    int64_t last = 0;
    for (std::string line; std::getline(csv, line);)
      if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) last = std::stoll(line);
    return last;
  };
  const auto checkpointIteration = [&]() -> int64_t {
    const Safetensors file = readSafetensors(dir / "m.ckpt.safetensors");  // throws if torn
    return nlohmann::json::parse(file.metadata.at("stylize-checkpoint"))["iteration"].get<int64_t>();
  };
  const unsigned seed = std::random_device{}();
  std::mt19937 random(seed);
  SCOPED_TRACE("kill schedule seed " + std::to_string(seed));
  int kills = 0;
  for (int attempt = 0; attempt < 30 && !fs::exists(dir / "m.safetensors"); ++attempt) {
    const bool resume = fs::exists(dir / "m.ckpt.safetensors");
    const int64_t logged = resume ? lastLoggedIteration() : 0;
    // Kill 0-50 ms after the log shows an iteration beyond what is already there: mid-step, mid-log,
    // mid-checkpoint, wherever that lands.
    const int64_t target = std::min<int64_t>(23, logged + 1 + int64_t(random() % 4));
    const double delay = double(random() % 50) / 1000;
    SCOPED_TRACE(
        fmt::format("attempt {}: from iteration {}, kill {:.3f} s after row {}", attempt, logged, delay, target));
    r = runStylize(args + (resume ? " --resume " + (dir / "m.ckpt.safetensors").string() : ""), dir.path(),
                   target <= logged
                       ? ""
                       : test::signalOnceFileMatches("KILL", dir / "m.log.csv", "^" + std::to_string(target) + ",",
                                                     delay, dir / "train.out"));
    if (r.exitCode == 0 && kills == 0) {  // a fast machine finished before the first kill landed: again
      for (const char* f : {"m.safetensors", "m.ckpt.safetensors", "m.log.csv"}) fs::remove(dir / f);
      continue;
    }
    if (r.exitCode == 0) break;  // finished before the kill landed
    ASSERT_EQ(r.exitCode, 128 + SIGKILL) << r.output;
    ++kills;
    // On a fast machine the kill can land after the last row, once the model is in place but before the
    // process exits: the model is renamed into place only when whole, so it must then match the straight run.
    if (fs::exists(dir / "m.safetensors")) break;
    if (!fs::exists(dir / "m.ckpt.safetensors")) {
      EXPECT_LT(lastLoggedIteration(), 3) << "no checkpoint after iteration 2\n" << r.output;
      continue;
    }
    const int64_t saved = checkpointIteration(), shown = lastLoggedIteration();
    EXPECT_GE(saved, shown - 2) << "more than one checkpoint interval lost\n" << r.output;  // --checkpoint-every
    EXPECT_LE(saved, shown) << r.output;
  }
  ASSERT_GE(kills, 1);
  ASSERT_TRUE(fs::exists(dir / "m.safetensors")) << r.output;

  // The same weights and the same log rows as the run that was never killed, and no debris.
  const auto straight = readSafetensors(dir / "straight.safetensors"), killed = readSafetensors(dir / "m.safetensors");
  ASSERT_EQ(straight.tensors.size(), killed.tensors.size());
  for (const auto& [name, value] : straight.tensors)
    EXPECT_TRUE(torch::allclose(killed.tensors.at(name), value, 1e-5, 1e-6)) << name;
  const auto rows = [](const fs::path& csv) {
    std::vector<std::string> iterations;
    std::ifstream in(csv);
    for (std::string line; std::getline(in, line);) iterations.push_back(line.substr(0, line.find(',')));
    return iterations;
  };
  EXPECT_EQ(rows(dir / "m.log.csv"), rows(dir / "straight.log.csv"));
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(TrainCli, OptimizeOptionsCombine) {
  // Coarse-to-fine, style init, a two-style blend, Adam and colour preservation in one run.
  const std::string photo = (dir / "photos/p1.jpg").string(), style = (dir / "style.png").string();
  for (const std::string extra : {"--scales 2 --init style --optimizer adam --preserve-colors",
                                  "--init noise --normalization gatys --pooling avg"}) {
    const auto out = dir / "blend.png";
    const auto r =
        runStylize("optimize --content " + photo + " --style " + style + ":0.5 --style " + photo + ":0.5 -o " +
                       out.string() + " --size 48 --iterations 4 --vgg " + (dir / "vgg.safetensors").string() +
                       " --content-layers relu2_2 --style-layers relu1_1,relu2_1 " + extra,
                   dir.path());
    ASSERT_EQ(r.exitCode, 0) << extra << "\n" << r.output;
    EXPECT_EQ(loadImage(out).sizes(), torch::IntArrayRef({3, 37, 48})) << extra;  // 40x52 scaled to long side 48
    std::filesystem::remove(out);
  }
}

TEST_F(TrainCli, EvalLossIsZeroForItsOwnTargets) {
  const std::string common = " --vgg " + (dir / "vgg.safetensors").string() +
                             " --content-layers relu2_2 --style-layers relu1_1,relu2_1 --tv-weight 0 --size 64";
  const std::string photo = (dir / "photos/p0.jpg").string(), style = (dir / "style.png").string();
  // The photo is its own content and style target: zero loss. Another image: both terms positive.
  const auto r = runStylize(
      "eval loss --content " + photo + " --style " + photo + " --image " + photo + " --image " + style + common,
      dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  // CSV rows: image,content,style,tv,total.
  const auto row = [&](const std::string& image) {
    const auto at = r.output.find(image + ",");
    std::vector<double> v;
    std::stringstream in(r.output.substr(at + image.size() + 1, r.output.find('\n', at) - at - image.size() - 1));
    for (std::string cell; std::getline(in, cell, ',');) v.push_back(std::stod(cell));
    return v;
  };
  EXPECT_LT(row(photo)[0], 1e-6);
  EXPECT_LT(row(photo)[1], 1e-6);
  EXPECT_GT(row(style)[0], 1e-3);
  EXPECT_GT(row(style)[1], 1e-3);
  EXPECT_NEAR(row(style)[3], row(style)[0] + row(style)[1], 1e-4 * row(style)[3]);
}

#ifdef STYLIZE_HAVE_VIDEO
TEST_F(TrainCli, EvalLossOfAVideoMeasuresSpreadFramesAndTheirMean) {
  av::quietLogs();
  test::VideoSpec spec;
  spec.framesMs = test::constantRate(12, 10);
  spec.motionX = 2;
  spec.lossless = true;
  test::writeTestVideo(dir / "in.mkv", spec);
  spec.motionX = 0;
  test::writeTestVideo(dir / "other.mkv", spec);
  const std::string common = " --style " + (dir / "style.png").string() + " --vgg " +
                             (dir / "vgg.safetensors").string() +
                             " --content-layers relu2_2 --style-layers relu1_1,relu2_1 --size 64 --samples 4";
  auto r = runStylize("eval loss " + (dir / "in.mkv").string() + " " + (dir / "in.mkv").string() + common, dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  // Four sampled frames, then the mean; a video is its own content target.
  std::istringstream rows(r.output.substr(r.output.find("frame,content,style,tv,total\n")));
  std::vector<std::string> frames;
  for (std::string line; std::getline(rows, line);)
    if (line.find(",0,") != std::string::npos) frames.push_back(line.substr(0, line.find(',')));
  ASSERT_EQ(frames.size(), 5u) << r.output;
  EXPECT_EQ(frames.back(), "mean");
  EXPECT_LT(std::stoi(frames[0]), std::stoi(frames[1]));
  r = runStylize("eval loss " + (dir / "in.mkv").string() + " " + (dir / "other.mkv").string() + common, dir.path());
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_NE(r.output.find("\nmean,"), std::string::npos);
  EXPECT_EQ(r.output.find("\nmean,0,"), std::string::npos) << r.output;  // moved content: a content loss
}

#ifdef STYLIZE_HAVE_SDL2
// `stylize live` without a window, recording: Ctrl-C ends it cleanly and the recording is whole, at the
// source's frame rate.
TEST(LiveCli, CtrlCLeavesAWholeRecording) {
  test::TempDir dir;
  av::quietLogs();
  torch::manual_seed(1);
  TransformerNet net(TransformerConfig{8, 1});
  saveStyleModel(dir / "m.safetensors", net, {});
  test::VideoSpec spec;
  spec.width = 96;
  spec.height = 64;
  spec.framesMs = test::constantRate(25, 40);
  test::writeTestVideo(dir / "clip.mkv", spec);
  const auto r =
      runStylize("live --input '" + (dir / "clip.mkv").string() + "' --loop --model '" +
                     (dir / "m.safetensors").string() + "' --no-window --output '" + (dir / "rec.mp4").string() + "'",
                 // (--foreground: one SIGINT; timeout otherwise signals its process group a second
                 // time, and a second Ctrl-C quits without finishing)
                 dir.path(), "timeout --foreground --preserve-status -s INT 4");
  ASSERT_EQ(r.exitCode, 0) << r.output;
  EXPECT_NE(r.output.find("stylize: → " + (dir / "rec.mp4").string() + ": "), std::string::npos) << r.output;
  VideoDecoder recording((dir / "rec.mp4").string());
  EXPECT_EQ(recording.info().width, 96);
  EXPECT_NEAR(av_q2d(recording.info().frameRate), 40, 0.5);  // the clip's
  VideoDecoder::Item item;
  int64_t frames = 0;
  while (recording.next(item)) frames += item.frame ? 1 : 0;
  EXPECT_GE(frames, 10);  // of ~4 s at 40 fps, less start-up
  EXPECT_TRUE(recording.endError().empty()) << recording.endError();
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();

  const auto none = runStylize("live --input '" + (dir / "clip.mkv").string() + "' --model '" +
                                   (dir / "m.safetensors").string() + "' --no-window",
                               dir.path());
  EXPECT_EQ(none.exitCode, 1);
  EXPECT_NE(none.output.find("--no-window needs an --output"), std::string::npos) << none.output;
}
#endif

TEST(VideoCli, ErrorsNameTheFileAndCtrlCLeavesAValidShorterVideo) {
  test::TempDir dir;
  av::quietLogs();
  torch::manual_seed(1);
  TransformerNet net(TransformerConfig{16, 3});
  saveStyleModel(dir / "m.safetensors", net, {});
  const std::string model = " --model '" + (dir / "m.safetensors").string() + "'";

  auto missing = runStylize("video '" + (dir / "nope.mp4").string() + "' -o '" + (dir / "o.mp4").string() + "'" + model,
                            dir.path());
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_NE(lastLine(missing.output).find("nope.mp4: cannot open"), std::string::npos) << missing.output;

  test::VideoSpec spec;
  spec.width = 256;
  spec.height = 192;
  spec.framesMs = test::constantRate(600, 25);
  spec.audio = true;
  test::writeTestVideo(dir / "long.mp4", spec);
  auto noFolder = runStylize(
      "video '" + (dir / "long.mp4").string() + "' -o '" + (dir / "x" / "o.mp4").string() + "'" + model, dir.path());
  EXPECT_EQ(noFolder.exitCode, 1);
  EXPECT_NE(lastLine(noFolder.output).find("does not exist"), std::string::npos) << noFolder.output;
  for (const char* start : {"100", "1e300"}) {
    auto late = runStylize(
        "video '" + (dir / "long.mp4").string() + "' -o '" + (dir / "late.mp4").string() + "' --start " + start + model,
        dir.path());
    EXPECT_EQ(late.exitCode, 1) << late.output;
    EXPECT_TRUE(lastLine(late.output).find("past the end of the video (24.0") != std::string::npos ||
                lastLine(late.output).find("--start must be 0 to") != std::string::npos)
        << late.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "late.mp4"));
  }

  auto noDisplay =
      runStylize("video '" + (dir / "long.mp4").string() + "' -o '" + (dir / "p.mp4").string() + "' --preview" + model,
                 dir.path(), "env -u DISPLAY -u WAYLAND_DISPLAY");
  EXPECT_EQ(noDisplay.exitCode, 1);
  EXPECT_NE(lastLine(noDisplay.output).find("no display"), std::string::npos) << noDisplay.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "p.mp4"));

  // 600 frames take about 40 s on one thread: the interrupt lands mid-run, once 5 frames are stylized.
  auto interrupted = runStylize(
      "video '" + (dir / "long.mp4").string() + "' -o '" + (dir / "short.mp4").string() + "' --threads 1" + model,
      dir.path(), test::interruptOnceOutputMatches("([^0-9]|^)([5-9]|[1-9][0-9]+)/600 frames", dir / "video.out"));
  EXPECT_EQ(interrupted.exitCode, 130) << interrupted.output;
  EXPECT_NE(interrupted.output.find("holds the first"), std::string::npos) << interrupted.output;
  const auto contents = test::readVideoContents(dir / "short.mp4");
  EXPECT_GT(contents.frameTimes.size(), 0u);
  EXPECT_LT(contents.frameTimes.size(), 600u);
  EXPECT_FALSE(contents.audioPackets.empty());
}

TEST(VideoCli, SigkillLeavesNoOutputAndTheRerunLeavesNoDebris) {
  namespace fs = std::filesystem;
  test::TempDir dir;
  av::quietLogs();
  torch::manual_seed(1);
  TransformerNet net(TransformerConfig{16, 3});
  saveStyleModel(dir / "m.safetensors", net, {});
  test::VideoSpec spec;
  spec.width = 256;
  spec.height = 192;
  spec.framesMs = test::constantRate(600, 25);  // about 40 s on one thread: the kill lands mid-run
  spec.audio = true;
  test::writeTestVideo(dir / "in.mp4", spec);
  const std::string command = "video '" + (dir / "in.mp4").string() + "' -o '" + (dir / "out.mp4").string() +
                              "' --threads 1 --model '" + (dir / "m.safetensors").string() + "'";

  // Killed once a few frames are encoded: the output path must not exist (only the temporary does).
  auto killed =
      runStylize(command, dir.path(),
                 test::signalOnceFileMatches("KILL", dir / "video.out", "([^0-9]|^)([3-9]|[1-9][0-9]+)/600 frames", 0.2,
                                             dir / "video.out"));
  ASSERT_EQ(killed.exitCode, 128 + SIGKILL) << killed.output;
  EXPECT_FALSE(fs::exists(dir / "out.mp4"));
  int debris = 0;
  for (const auto& e : fs::directory_iterator(dir.path()))
    debris += e.path().string().find(".tmp-") != std::string::npos;
  EXPECT_EQ(debris, 1);

  // The same command again (shortened) succeeds, and the dead run's temporary is gone.
  auto rerun = runStylize(command + " --duration 0.4", dir.path());
  ASSERT_EQ(rerun.exitCode, 0) << rerun.output;
  const auto contents = test::readVideoContents(dir / "out.mp4");
  EXPECT_EQ(contents.frameTimes.size(), 10u);
  EXPECT_FALSE(contents.audioPackets.empty());
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}
#endif

}  // namespace
}  // namespace stylize
