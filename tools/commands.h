// The subcommands of `stylize`, and the flag groups they share.
#pragma once

#include <chrono>
#include <cxxopts.hpp>
#include <optional>
#include <string>
#include <vector>

#include "infer/stylizer.h"
#include "train/perceptual_loss.h"

namespace stylize::cli {

int runOptimize(int argc, char** argv);
int runBench(int argc, char** argv);
int runTrain(int argc, char** argv);
int runImage(int argc, char** argv);
int runEval(int argc, char** argv);
int runBlend(int argc, char** argv);
int runImport(int argc, char** argv);
int runExport(int argc, char** argv);
int runVideo(int argc, char** argv);
int runLive(int argc, char** argv);
// stylize train --nproc N: starts N workers (`stylize WORKERARGS...`) as ranks 0..N-1 of one loopback group and
// waits for them; forwards SIGINT/SIGTERM; kills workers still alive `timeout` after another failed.
int launchLocalWorkers(int nproc, std::vector<std::string> workerArgs, std::chrono::seconds timeout);
int benchVideo(const cxxopts::ParseResult& args);
int benchLive(const cxxopts::ParseResult& args);

// Loss flags shared by optimize and train: weights, layer lists, pyramid, normalisation.
void addLossOptions(cxxopts::Options& options);
LossConfig lossConfigFromArgs(const cxxopts::ParseResult& args, const Vgg19& vgg);
std::string describeLossConfig(const LossConfig& config);
// "loss 4.76 (content 3.13 style 1.59 tv 0.0332)" for progress bars.
std::string describeLoss(const LossValues& loss);

struct StyleImages {
  std::vector<torch::Tensor> images;
  std::vector<double> blend;
};
// "--style a.jpg:0.7 --style b.jpg:0.3", each scaled to `longSide`.
StyleImages loadStyleImages(const std::vector<std::string>& specs, int64_t longSide);

// --model, --strength, --preserve-colors, --fp16: shared by image, video and live.
void addStylizeOptions(cxxopts::Options& options);
std::string singleModel(const cxxopts::ParseResult& args, const std::string& command);
StylizeOptions stylizeOptionsFromArgs(const cxxopts::ParseResult& args);
Precision precisionFromArgs(const cxxopts::ParseResult& args);

// --stabilize[=S] and --stabilize-gate G: shared by video and live. Not given: the model's recommendation.
struct StabilizeFlags {
  std::optional<double> strength, gate;
};
void addStabilizeOptions(cxxopts::Options& options);
StabilizeFlags stabilizeFlagsFromArgs(const cxxopts::ParseResult& args);
// "stylize: note: ..." on stderr when the model's recommended smoothing applies (so a user knows how to turn it off).
void noteModelStabilize(const StabilizeFlags& flags, const Stylizer& stylizer);

}  // namespace stylize::cli
