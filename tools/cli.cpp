#include "tools/cli.h"

#include <ATen/Context.h>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "data/error.h"
#include "data/image.h"

namespace fs = std::filesystem;

namespace stylize::cli {

void addComputeOptions(cxxopts::Options& options) {
  // clang-format off
  options.add_options("Compute")
      ("threads", "CPU threads for LibTorch (0 = all cores)", cxxopts::value<int>()->default_value("0"))
      ("device", "auto, cpu, cuda or cuda:N", cxxopts::value<std::string>()->default_value("auto"))
      ("seed", "random seed, for reproducible runs", cxxopts::value<uint64_t>()->default_value("0"));
  // clang-format on
}

torch::Device parseDevice(const std::string& spec) {
  if (spec == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (spec == "cpu") return torch::kCPU;
  if (spec.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) throw Error("--device " + spec + ": this LibTorch build or machine has no CUDA");
    try {
      return torch::Device(spec);
    } catch (const c10::Error&) {
      throw Error("--device " + spec + ": not a device (use auto, cpu, cuda or cuda:N)");
    }
  }
  throw Error("--device " + spec + ": not a device (use auto, cpu, cuda or cuda:N)");
}

torch::Device applyComputeOptions(const cxxopts::ParseResult& args) {
  int threads = args["threads"].as<int>();
  if (threads < 0) throw Error("--threads must be 0 (all cores) or more");
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  const torch::Device device = parseDevice(args["device"].as<std::string>());
  // Frame and crop sizes are fixed for a whole run: cuDNN's autotuner pays for itself after a few calls.
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  return device;
}

void addVggOptions(cxxopts::Options& options) {
  // clang-format off
  options.add_options("Loss network")
      ("vgg", "VGG19 weights (.safetensors, torchvision names); default: $STYLIZE_VGG19, ~/.cache/stylize/vgg19.safetensors, ../shared/vgg19/*.safetensors", cxxopts::value<std::string>())
      ("pooling", "max or avg (Gatys found average pooling gives smoother results)", cxxopts::value<std::string>()->default_value("max"));
  // clang-format on
}

fs::path assetDir() {
  if (const char* home = std::getenv("STYLIZE_HOME")) return home;
  return STYLIZE_SOURCE_DIR;
}

fs::path cacheDir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "stylize";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "stylize";
  return fs::temp_directory_path() / "stylize-cache";
}

fs::path findVggWeights(const cxxopts::ParseResult& args) {
  if (args.count("vgg")) return args["vgg"].as<std::string>();
  if (const char* env = std::getenv("STYLIZE_VGG19"); env && *env) return env;
  std::vector<fs::path> candidates = {
      cacheDir() / "vgg19.safetensors", assetDir() / "models" / "vgg19.safetensors",
      assetDir().parent_path() / "shared" / "vgg19" / "vgg19_conv1_1-conv3_4.safetensors"};
  std::error_code ec;
  for (const auto& c : candidates)
    if (fs::exists(c, ec)) return c;
  throw Error("no VGG19 weights found: pass --vgg FILE or set STYLIZE_VGG19 (README: Getting VGG19 weights)");
}

Vgg19 loadLossNetwork(const cxxopts::ParseResult& args, const torch::Device& device) {
  const std::string pooling = args["pooling"].as<std::string>();
  if (pooling != "max" && pooling != "avg") throw Error("--pooling " + pooling + ": use max or avg");
  const fs::path weights = findVggWeights(args);
  auto photos = [] {
    std::vector<torch::Tensor> out;
    const fs::path dir = assetDir() / "samples" / "calibration";
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".jpg") out.push_back(loadImage(entry.path()));
    if (out.empty())
      throw Error(dir.string() + ": no calibration photos (*.jpg); set STYLIZE_HOME to the Stylize folder");
    std::cerr << "stylize: normalising VGG19 on " << out.size() << " calibration photos (once; cached)\n";
    return out;
  };
  Vgg19 vgg = loadNormalizedVgg19(weights, cacheDir(), photos, pooling == "avg" ? Pooling::kAverage : Pooling::kMax);
  vgg.to(device);
  const char* rank = std::getenv("RANK");  // the other ranks of a distributed run say nothing twice
  if (!rank || std::string(rank) == "0")
    std::cerr << "stylize: loss network " << weights.string() << " (" << vgg.loadedRange() << ", normalised)\n";
  return vgg;
}

std::pair<std::string, double> splitWeight(const std::string& item, const std::string& flag) {
  const auto colon = item.rfind(':');
  if (colon == std::string::npos) return {item, 1.0};
  const std::string number = item.substr(colon + 1);
  size_t used = 0;
  double weight = 0;
  try {
    weight = std::stod(number, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != number.size() || !(weight >= 0))
    throw Error(flag + ": \"" + item + "\" needs a non-negative weight after ':'");
  return {item.substr(0, colon), weight};
}

cxxopts::ParseResult parse(cxxopts::Options& options, int argc, char** argv) {
  // clang-format off
  options.add_options("Help")
      ("h,help", "show this help");
  options.set_width(110);
  // clang-format on
  try {
    auto result = options.parse(argc, argv);
    if (result.count("help")) {
      std::cout << options.help() << std::endl;
      std::exit(0);
    }
    // A word nothing takes is a mistake, never silently ignored: most often the value of an option whose
    // value is optional (--stabilize 0.2 means --stabilize and a stray 0.2).
    if (!result.unmatched().empty())
      throw Error(options.program() + ": unexpected argument \"" + result.unmatched().front() +
                  "\" (an option with an optional value takes it as --option=VALUE; see --help)");
    return result;
  } catch (const cxxopts::exceptions::exception& e) {
    throw Error(options.program() + ": " + e.what() + " (see --help)");
  }
}

std::string formatDuration(double seconds) {
  if (!(seconds >= 0) || seconds > 359999) return "--:--";
  const int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%d:%02d", s / 60, s % 60);
  return buf;
}

ProgressBar::ProgressBar(int64_t total, std::string unit, std::chrono::steady_clock::time_point start)
    : total_(std::max<int64_t>(1, total)),
      unit_(std::move(unit)),
      start_(start),
      lastDraw_(start_ - std::chrono::hours(1)),
      tty_(::isatty(STDERR_FILENO) != 0) {}

void ProgressBar::update(int64_t done, const std::string& status) {
  const auto now = std::chrono::steady_clock::now();
  // A terminal gets ~10 redraws a second; a log file a line every 10 s so it stays readable.
  if (now - lastDraw_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000))) return;
  lastDraw_ = now;
  draw(done, status, false);
}

void ProgressBar::finish(const std::string& status) { draw(total_, status, true); }

void ProgressBar::draw(int64_t done, const std::string& status, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? (done - initial_) / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : -1;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(kWidth * std::min<int64_t>(done, total_) / total_);
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  char head[160];
  std::snprintf(head, sizeof head, "[%s] %lld/%lld %s  %.2f %s/s  %s %s", bar.c_str(), static_cast<long long>(done),
                static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str(), final ? "took" : "ETA",
                formatDuration(final ? elapsed : eta).c_str());
  std::string line = std::string(head) + (status.empty() ? "" : "  " + status);
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

namespace {
std::atomic<bool> gStopRequested{false};
extern "C" void onStopSignal(int) {
  gStopRequested = true;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}
}  // namespace

StopSignal::StopSignal() {
  gStopRequested = false;
  std::signal(SIGINT, onStopSignal);
  std::signal(SIGTERM, onStopSignal);
}

StopSignal::~StopSignal() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

const std::atomic<bool>& StopSignal::flag() const { return gStopRequested; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace stylize::cli
