// stylize bench: speed figures against PyTorch measured in the same run, as ratios (the machine is shared
// and noisy, so absolute times from different runs do not compare).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/error.h"
#include "data/image.h"
#include "infer/stylizer.h"
#include "nets/fused_inference.h"
#include "nets/style_model.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace stylize::cli {
namespace {

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

// The loss settings the Python counterparts replicate.
void addLossSpec(nlohmann::json& spec, const cxxopts::ParseResult& args, const LossConfig& config) {
  spec["weights"] = findVggWeights(args).string();
  spec["pooling"] = args["pooling"].as<std::string>();
  spec["pyramid"] = config.pyramidLevels;
  for (const auto& l : config.contentLayers) spec["content_layers"].push_back(l.layer);
  for (const auto& l : config.styleLayers) spec["style_layers"].push_back(l.layer);
}

// Runs tools/<script> with --python and the JSON spec; returns its JSON (empty when --python is '').
nlohmann::json runPythonBench(const cxxopts::ParseResult& args, const std::string& script, const nlohmann::json& spec) {
  const std::string python = args["python"].as<std::string>();
  if (python.empty()) return nlohmann::json::object();
  const fs::path path = assetDir() / "tools" / script;
  const std::string out = runCommand(python + " '" + path.string() + "' '" + spec.dump() + "'");
  const auto brace = out.rfind('{');
  if (brace == std::string::npos) throw Error(path.string() + ": printed no JSON result");
  return nlohmann::json::parse(out.substr(brace));
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

  nlohmann::json spec = {{"sizes", sizes}, {"repeats", repeats}, {"threads", torch::get_num_threads()}};
  addLossSpec(spec, args, config);
  const nlohmann::json theirs = runPythonBench(args, "bench_optimize.py", spec);

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

struct NetCase {
  std::string name;
  TransformerConfig config;
};
const std::vector<NetCase> kNets = {{"default", TransformerConfig::defaults(Architecture::kJohnson)},
                                    {"small", {16, 3}},
                                    {"compact", TransformerConfig::defaults(Architecture::kCompact)}};

int benchTransformer(const cxxopts::ParseResult& args) {
  const torch::Device device = applyComputeOptions(args);
  const int repeats = args["repeats"].as<int>();
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{256, 256}, {512, 512}, {480, 640}};
  const fs::path tmp = fs::temp_directory_path() / ("stylize-bench-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  nlohmann::json ours, spec = {{"threads", torch::get_num_threads()}, {"repeats", repeats}};

  // The machine's compute rate: a large float32 matrix product (sgemm), as LibTorch runs it.
  const torch::Tensor a = torch::rand({1536, 1536}).to(device), b = torch::rand({1536, 1536}).to(device);
  const double gemmRate = 2.0 * 1536 * 1536 * 1536 / medianSeconds(2, std::max(5, repeats), [&] {
                            torch::mm(a, b);
                            if (device.is_cuda()) torch::cuda::synchronize();
                          });

  // Inference through the Stylizer, the path `stylize image/video/live` run: fused (nets/fused_inference.h)
  // and layer by layer, alternating so that the machine's load falls on both alike.
  nlohmann::json layered, floor;
  for (const auto& net : kNets) {
    TransformerNet model(net.config);
    saveStyleModel(tmp / (net.name + ".safetensors"), model, {});
    Stylizer stylizer(tmp / (net.name + ".safetensors"), device);
    for (auto [h, w] : sizes) {
      const std::string name = fmt::format("infer {} {}x{}", net.name, w, h);
      const torch::Tensor x = torch::rand({1, 3, h, w}).to(device);
      auto once = [&](bool fusedOn) {
        fused::setEnabled(fusedOn);
        const auto t0 = std::chrono::steady_clock::now();
        stylizer(x);
        if (device.is_cuda()) torch::cuda::synchronize();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      };
      std::vector<double> fast, slow;
      for (int i = 0; i < 2; ++i) once(true), once(false);
      for (int i = 0; i < repeats; ++i) fast.push_back(once(true)), slow.push_back(once(false));
      fused::setEnabled(true);
      ours[name] = median(fast);
      layered[name] = median(slow);
      floor[name] = 2 * multiplyAdds(net.config, h, w) / gemmRate;
      spec["inference"].push_back({{"name", name},
                                   {"type", architectureName(net.config.type)},
                                   {"width", net.config.width},
                                   {"blocks", net.config.blocks},
                                   {"height", h},
                                   {"width_px", w}});
    }
  }

  // A whole training step (network, VGG loss with the default layers, backward, Adam) at 256², batch 4.
  const Vgg19 vgg = loadLossNetwork(args, device);
  const LossConfig config = lossConfigFromArgs(args, vgg);
  PerceptualLoss loss(vgg, config);
  loss.setStyle({torch::rand({3, 256, 256})}, {1.0});
  for (const auto& net : kNets) {
    const std::string name = "train step " + net.name + " 4x256²";
    TrainOptions options;
    options.architecture = net.config;
    Trainer trainer(loss, options);
    const torch::Tensor batch = torch::rand({4, 3, 256, 256}).to(device);
    ours[name] = medianSeconds(1, std::max(3, repeats / 2), [&] {
      trainer.step(batch);
      if (device.is_cuda()) torch::cuda::synchronize();
    });
    spec["train"].push_back({{"name", name},
                             {"type", architectureName(net.config.type)},
                             {"width", net.config.width},
                             {"blocks", net.config.blocks},
                             {"batch", 4},
                             {"size", 256}});
  }
  fs::remove_all(tmp);

  addLossSpec(spec, args, config);
  spec["repeats"] = std::max(3, repeats / 2);
  const nlohmann::json theirs = runPythonBench(args, "bench_transformer.py", spec);
  std::cout << fmt::format("Transform network, {} threads on {} (medians); sgemm {:.0f} GFLOP/s\n",
                           torch::get_num_threads(), device.str(), gemmRate / 1e9)
            << "| case | Stylize (ms) | layer by layer (ms) | PyTorch (ms) | speed-up over PyTorch | fused gain | "
               "compute floor (ms) | Stylize / floor |\n|---|---|---|---|---|---|---|---|\n";
  auto cell = [](const nlohmann::json& table, const std::string& name) {
    return table.contains(name) ? fmt::format("{:.1f}", table[name].get<double>() * 1e3) : std::string("–");
  };
  for (const auto& [name, seconds] : ours.items()) {
    const double a = seconds.get<double>();
    auto ratio = [&](const nlohmann::json& table) {
      return table.contains(name) ? fmt::format("{:.2f}×", table[name].get<double>() / a) : std::string("–");
    };
    std::cout << fmt::format(
        "| {} | {:.1f} | {} | {} | {} | {} | {} | {} |\n", name, a * 1e3, cell(layered, name), cell(theirs, name),
        ratio(theirs), ratio(layered), cell(floor, name),
        floor.contains(name) ? fmt::format("{:.2f}", a / floor[name].get<double>()) : std::string("–"));
  }
  return 0;
}

// Data-parallel training: `stylize train` itself (launcher, c10d Gloo, sharded loading) with N processes of
// `--threads` threads each, against one process; images per second from the per-step times in its log.
int benchTrain(const cxxopts::ParseResult& args) {
  std::vector<int> counts;
  {
    std::stringstream in(args["nproc"].as<std::string>());
    for (std::string item; std::getline(in, item, ',');) {
      try {
        counts.push_back(std::stoi(item));
      } catch (const std::exception&) {
        throw Error("--nproc: \"" + item + "\" is not a number");
      }
      if (counts.back() < 1 || counts.back() > 64) throw Error("--nproc: each count must be 1..64");
    }
  }
  const int64_t batch = args["batch-size"].as<int64_t>(), size = args["image-size"].as<int64_t>();
  const int iterations = std::max(4, args["repeats"].as<int>());
  const int threads = std::max(1, args["threads"].as<int>());
  const fs::path tmp = fs::temp_directory_path() / ("stylize-bench-train-" + std::to_string(::getpid()));
  fs::create_directories(tmp / "photos");
  struct Cleanup {
    fs::path path;
    ~Cleanup() { fs::remove_all(path); }
  } cleanup{tmp};
  // The photos: --dataset, else generated (each crop is decoded and resized as in a real run).
  fs::path dataset = args.count("dataset") ? fs::path(args["dataset"].as<std::string>()) : tmp / "photos";
  if (!args.count("dataset")) {
    torch::manual_seed(0);
    for (int i = 0; i < 64; ++i)
      saveImage(tmp / "photos" / fmt::format("p{:02d}.jpg", i),
                torch::nn::functional::interpolate(torch::rand({1, 3, 36, 48}),
                                                   torch::nn::functional::InterpolateFuncOptions()
                                                       .size(std::vector<int64_t>{288, 384})
                                                       .mode(torch::kBilinear)
                                                       .align_corners(false))
                    .squeeze(0));
  }
  fs::path style = assetDir() / "samples/styles/great_wave.jpg";
  saveImage(tmp / "style.png", torch::rand({3, 256, 256}));
  if (!fs::exists(style)) style = tmp / "style.png";
  const std::string vgg = findVggWeights(args).string();
  std::cout << fmt::format(
      "Data-parallel training: stylize train, johnson {}/{} network, batch {} × {}², {} thread(s) per process, "
      "c10d Gloo on loopback (median step of iterations 3..{})\n"
      "| processes | step (s) | images/s | vs 1 process |\n|---|---|---|---|\n",
      args["width"].as<int64_t>(), args["blocks"].as<int64_t>(), batch, size, threads, iterations);
  double single = 0;
  for (const int n : counts) {
    if (batch % n != 0) throw Error(fmt::format("--nproc {}: --batch-size {} does not split evenly", n, batch));
    const fs::path output = tmp / fmt::format("m{}.safetensors", n);
    const std::string command = fmt::format(
        "'{}' train --style '{}' --dataset '{}' --vgg '{}' -o '{}' --iterations {} --batch-size {} "
        "--image-size {} --width {} --blocks {} --validation 0 --log-every 1 --checkpoint-every 0 --threads {} "
        "--nproc {} 2>&1",
        fs::read_symlink("/proc/self/exe").string(), style.string(), dataset.string(), vgg, output.string(), iterations,
        batch, size, args["width"].as<int64_t>(), args["blocks"].as<int64_t>(), threads, n);
    const std::string log = runCommand(command);
    // The log's seconds column is the trainer's clock after each step: its differences are step times.
    std::ifstream csv(tmp / fmt::format("m{}.log.csv", n));
    std::vector<double> seconds, steps;
    for (std::string line; std::getline(csv, line);)
      if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0])))
        seconds.push_back(std::stod(line.substr(line.rfind(',') + 1)));
    for (size_t i = 3; i < seconds.size(); ++i) steps.push_back(seconds[i] - seconds[i - 1]);
    if (steps.empty()) throw Error("bench train: the run logged too few steps:\n" + log);
    const double step = median(steps), rate = static_cast<double>(batch) / step;
    if (single == 0) single = rate;
    std::cout << fmt::format("| {} | {:.2f} | {:.2f} | {:.2f}× |\n", n, step, rate, rate / single) << std::flush;
  }
  return 0;
}

}  // namespace

int runBench(int argc, char** argv) {
  cxxopts::Options options(
      "stylize bench",
      "Measure speed on this machine, next to PyTorch in the same run (medians; ratio < 1 = faster).\n"
      "  stylize bench optimize                 loss forward+backward at 256² and 512²\n"
      "  stylize bench transformer              transform network inference and training steps\n"
      "  stylize bench video --dump --memory    video pipeline vs model alone vs frame dumping; peak memory\n"
      "  stylize bench live                     live fps and latency at 640×480, headless\n"
      "  stylize bench live --output udp://127.0.0.1:5000   the same with a stream attached\n"
      "  stylize bench train --nproc 1,2 --threads 1   data-parallel training, images/s per process count\n"
      "  stylize bench optimize --python ''     ours only\n");
  // clang-format off
  options.add_options()
      ("what", "optimize, transformer, train, video or live", cxxopts::value<std::string>())
      ("sizes", "square image sizes", cxxopts::value<std::string>()->default_value("256,512"))
      ("repeats", "timed repetitions per size (median reported)", cxxopts::value<int>()->default_value("10"))
      ("python", "Python with torch for the comparison ('' to skip)", cxxopts::value<std::string>()->default_value("/usr/bin/python3"));
  // clang-format on
  // clang-format off
  options.add_options("Video")
      ("model", "style models (default: the bundled models/*.safetensors)", cxxopts::value<std::vector<std::string>>())
      ("clip", "clips to measure (default: three from ../shared/data/video)", cxxopts::value<std::vector<std::string>>())
      ("seconds", "seconds of each clip to stylize", cxxopts::value<double>()->default_value("5"))
      ("frames", "bench live: frames per measurement", cxxopts::value<int64_t>()->default_value("60"))
      ("output", "bench live: also send to this output, e.g. udp://127.0.0.1:5000 (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("dump", "also time ffmpeg → PNG → stylize image → ffmpeg")
      ("memory", "also stylize each whole clip in a child process and report its peak RSS");
  options.add_options("Train")
      ("nproc", "bench train: process counts to compare", cxxopts::value<std::string>()->default_value("1,2"))
      ("dataset", "bench train: photos (default: generated)", cxxopts::value<std::string>())
      ("batch-size", "bench train: global batch", cxxopts::value<int64_t>()->default_value("4"))
      ("image-size", "bench train: crop size", cxxopts::value<int64_t>()->default_value("256"))
      ("width", "bench train: network width", cxxopts::value<int64_t>()->default_value("32"))
      ("blocks", "bench train: residual blocks", cxxopts::value<int64_t>()->default_value("5"));
  // clang-format on
  addLossOptions(options);
  addVggOptions(options);
  addComputeOptions(options);
  options.parse_positional({"what"});
  options.positional_help("optimize");
  auto args = parse(options, argc, argv);
  const std::string what = args.count("what") ? args["what"].as<std::string>() : "";
  if (what == "optimize") return benchOptimize(args);
  if (what == "transformer") return benchTransformer(args);
  if (what == "train") return benchTrain(args);
#ifdef STYLIZE_HAVE_VIDEO
  if (what == "video") return benchVideo(args);
#ifdef STYLIZE_HAVE_SDL2
  if (what == "live") return benchLive(args);
#endif
#endif
  throw Error("stylize bench: say what to measure: optimize, transformer, train, video or live (see --help)");
}

}  // namespace stylize::cli
