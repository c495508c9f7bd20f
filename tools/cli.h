// Pieces every subcommand shares: consistent flags (--threads, --device, --vgg, --seed), device and
// weights lookup, the progress bar. The subcommands themselves stay thin.
#pragma once

#include <torch/types.h>

#include <atomic>
#include <chrono>
#include <cxxopts.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "nets/vgg.h"

namespace stylize::cli {

// --threads, --device, --seed: added to every subcommand that computes.
void addComputeOptions(cxxopts::Options& options);
// Applies --threads (default: all cores; Debian's LibTorch would otherwise use 1) and returns --device.
torch::Device applyComputeOptions(const cxxopts::ParseResult& args);
// "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:N".
torch::Device parseDevice(const std::string& spec);

// --vgg and --pooling, for subcommands that use the loss network.
void addVggOptions(cxxopts::Options& options);
// The weights file: --vgg, else $STYLIZE_VGG19, else the first of the documented default locations.
std::filesystem::path findVggWeights(const cxxopts::ParseResult& args);
// Loaded, normalised (cached channel means) and on `device`; prints which file and layers are used.
Vgg19 loadLossNetwork(const cxxopts::ParseResult& args, const torch::Device& device);

// Bundled assets (calibration photos, sample clip, models): $STYLIZE_HOME, else the source tree.
std::filesystem::path assetDir();
// $XDG_CACHE_HOME/stylize or ~/.cache/stylize.
std::filesystem::path cacheDir();

// Parses "a.jpg:0.7" into the path and weight (1 when absent). A Windows-free tool: ':' never starts a path.
std::pair<std::string, double> splitWeight(const std::string& item, const std::string& flag);

// Parses the command line; --help prints the teaching help and exits 0; errors become stylize::Error.
cxxopts::ParseResult parse(cxxopts::Options& options, int argc, char** argv);

// A single-line progress bar on stderr: count, rate, ETA and a caller-supplied status.
class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string unit,
              std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now());
  // A resumed job: rates and ETA count only the work done from `done` on.
  void resumeAt(int64_t done) { initial_ = done; }
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");

 private:
  void draw(int64_t done, const std::string& status, bool final);
  int64_t total_, initial_ = 0;
  std::string unit_;
  std::chrono::steady_clock::time_point start_, lastDraw_;
  bool tty_;
};

std::string formatDuration(double seconds);

// The median of the values (0 when there are none): the figure benchmarks report on a noisy machine.
double median(std::vector<double> values);

// While alive, Ctrl-C and SIGTERM set flag() instead of killing the process, so long jobs can write
// what they have (a checkpoint, a shorter video); a second signal ends at once.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  const std::atomic<bool>& flag() const;
  bool requested() const { return flag().load(); }
};

}  // namespace stylize::cli
