// stylize bench: speed figures against PyTorch measured in the same run, as ratios (the machine is shared
// and noisy, so absolute times from different runs do not compare).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/error.h"
#include "data/image.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace fs = std::filesystem;

namespace stylize::cli {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

template <typename Fn>
double medianSeconds(int warmup, int repeats, Fn&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(times);
}

std::string runCommand(const std::string& command) {
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw Error("cannot run: " + command);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  if (::pclose(pipe) != 0) throw Error("failed: " + command);
  return out;
}

std::vector<int> parseSizes(const std::string& spec) {
  std::vector<int> sizes;
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      sizes.push_back(std::stoi(item));
    } catch (const std::exception&) {
      throw Error("--sizes: \"" + item + "\" is not a number");
    }
    if (sizes.back() < 32 || sizes.back() > 4096) throw Error("--sizes: each size must be 32..4096");
  }
  return sizes;
}

int benchOptimize(const cxxopts::ParseResult& args) {
  const torch::Device device = applyComputeOptions(args);
  const Vgg19 vgg = loadLossNetwork(args, device);
  const LossConfig config = lossConfigFromArgs(args, vgg);
  const int repeats = args["repeats"].as<int>();
  const std::vector<int> sizes = parseSizes(args["sizes"].as<std::string>());
  const fs::path photos = assetDir() / "samples" / "calibration";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(photos))
    if (e.path().extension() == ".jpg") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.size() < 2) throw Error(photos.string() + ": need two photos for the benchmark");

  std::cout << "Loss evaluation (forward + backward), " << torch::get_num_threads() << " threads, " << vgg.loadedRange()
            << ", " << describeLossConfig(config) << "\n";
  nlohmann::json ours;
  for (int size : sizes) {
    PerceptualLoss loss(vgg, config);
    loss.setStyle({resizeImage(loadImage(files[1]), size, size)}, {1.0});
    const torch::Tensor content = resizeImage(loadImage(files[0]), size, size).unsqueeze(0).to(device);
    const Features targets = loss.contentTargets(content);
    torch::Tensor x = content.clone().set_requires_grad(true);
    ours[std::to_string(size)] = medianSeconds(2, repeats, [&] {
      x.mutable_grad() = torch::Tensor();
      loss(x, targets).total.backward();
      if (device.is_cuda()) torch::cuda::synchronize();
    });
  }

  nlohmann::json theirs;
  const std::string python = args["python"].as<std::string>();
  if (!python.empty()) {
    nlohmann::json spec = {{"weights", findVggWeights(args).string()},
                           {"content", files[0].string()},
                           {"style", files[1].string()},
                           {"sizes", sizes},
                           {"repeats", repeats},
                           {"threads", torch::get_num_threads()},
                           {"pooling", args["pooling"].as<std::string>()},
                           {"pyramid", config.pyramidLevels}};
    for (const auto& l : config.contentLayers) spec["content_layers"].push_back(l.layer);
    for (const auto& l : config.styleLayers) spec["style_layers"].push_back(l.layer);
    const fs::path script = assetDir() / "tools" / "bench_optimize.py";
    const std::string out = runCommand(python + " '" + script.string() + "' '" + spec.dump() + "'");
    theirs = nlohmann::json::parse(out.substr(out.rfind('{')));
  }

  std::cout << "| size | Stylize (ms) | PyTorch (ms) | ratio |\n|---|---|---|---|\n";
  for (int size : sizes) {
    const double a = ours[std::to_string(size)].get<double>() * 1e3;
    if (theirs.contains(std::to_string(size))) {
      const double b = theirs[std::to_string(size)].get<double>() * 1e3;
      std::cout << fmt::format("| {}² | {:.1f} | {:.1f} | {:.2f}× |\n", size, a, b, a / b);
    } else {
      std::cout << fmt::format("| {}² | {:.1f} | – | – |\n", size, a);
    }
  }
  return 0;
}

}  // namespace

int runBench(int argc, char** argv) {
  cxxopts::Options options(
      "stylize bench",
      "Measure speed on this machine, next to PyTorch in the same run (medians; ratio < 1 = faster).\n"
      "  stylize bench optimize                 loss forward+backward at 256² and 512²\n"
      "  stylize bench optimize --python ''     ours only\n");
  // clang-format off
  options.add_options()
      ("what", "optimize", cxxopts::value<std::string>())
      ("sizes", "square image sizes", cxxopts::value<std::string>()->default_value("256,512"))
      ("repeats", "timed repetitions per size (median reported)", cxxopts::value<int>()->default_value("10"))
      ("python", "Python with torch for the comparison ('' to skip)", cxxopts::value<std::string>()->default_value("/usr/bin/python3"));
  // clang-format on
  addLossOptions(options);
  addVggOptions(options);
  addComputeOptions(options);
  options.parse_positional({"what"});
  options.positional_help("optimize");
  auto args = parse(options, argc, argv);
  const std::string what = args.count("what") ? args["what"].as<std::string>() : "";
  if (what == "optimize") return benchOptimize(args);
  throw Error("stylize bench: say what to measure: optimize (see --help)");
}

}  // namespace stylize::cli
