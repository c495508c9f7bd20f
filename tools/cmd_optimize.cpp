// stylize optimize: Gatys-style optimisation of one image.
#include <torch/torch.h>

#include <iostream>

#include "data/color.h"
#include "data/error.h"
#include "data/files.h"
#include "data/image.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "train/gatys.h"

namespace fs = std::filesystem;

namespace stylize::cli {
namespace {

fs::path intermediatePath(const fs::path& output, int iteration) {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "_%05d", iteration);
  return output.parent_path() / (output.stem().string() + suffix + output.extension().string());
}

}  // namespace

void addLossOptions(cxxopts::Options& options) {
  // clang-format off
  options.add_options("Loss (defaults depend on the layers the VGG19 file has; printed at start)")
      ("content-weight", "weight α of the content loss", cxxopts::value<double>())
      ("style-weight", "weight β of the style loss", cxxopts::value<double>())
      ("tv-weight", "weight of the total-variation (smoothness) loss", cxxopts::value<double>())
      ("content-layers", "content layers with weights, e.g. relu4_2:1", cxxopts::value<std::string>())
      ("style-layers", "style layers with weights, e.g. relu1_1:1,relu2_1:1,relu3_1:1", cxxopts::value<std::string>())
      ("pyramid", "style loss on N scales (1 = off): restores large structure with shallow layers", cxxopts::value<int>())
      ("normalization", "mean (size-independent, default) or gatys (the paper's ½Σ and 1/(4N²M²))", cxxopts::value<std::string>()->default_value("mean"));
  // clang-format on
}

LossConfig lossConfigFromArgs(const cxxopts::ParseResult& args, const Vgg19& vgg) {
  LossConfig config = defaultLossConfig(vgg);
  if (args.count("content-weight")) config.contentWeight = args["content-weight"].as<double>();
  if (args.count("style-weight")) config.styleWeight = args["style-weight"].as<double>();
  if (args.count("tv-weight")) config.tvWeight = args["tv-weight"].as<double>();
  if (args.count("content-layers"))
    config.contentLayers = parseLayerWeights(args["content-layers"].as<std::string>(), "--content-layers");
  if (args.count("style-layers"))
    config.styleLayers = parseLayerWeights(args["style-layers"].as<std::string>(), "--style-layers");
  if (args.count("pyramid")) config.pyramidLevels = args["pyramid"].as<int>();
  const std::string norm = args["normalization"].as<std::string>();
  if (norm != "mean" && norm != "gatys") throw Error("--normalization " + norm + ": use mean or gatys");
  config.normalization = norm == "gatys" ? LossNormalization::kGatys : LossNormalization::kMean;
  if (config.contentWeight < 0 || config.styleWeight < 0 || config.tvWeight < 0)
    throw Error("loss weights must be non-negative");
  vgg.requireLayers([&] {
    std::vector<std::string> taps;
    for (const auto& l : config.contentLayers) taps.push_back(l.layer);
    for (const auto& l : config.styleLayers) taps.push_back(l.layer);
    return taps;
  }());
  return config;
}

std::string describeLossConfig(const LossConfig& c) {
  return "content " + formatLayerWeights(c.contentLayers) + " ×" + fmt::format("{:g}", c.contentWeight) + ", style " +
         formatLayerWeights(c.styleLayers) + " ×" + fmt::format("{:g}", c.styleWeight) + ", tv ×" +
         fmt::format("{:g}", c.tvWeight) + ", pyramid " + std::to_string(c.pyramidLevels) +
         (c.normalization == LossNormalization::kGatys ? ", gatys normalisation" : "");
}

std::string describeLoss(const LossValues& l) {
  return fmt::format("loss {:.4g} (content {:.3g} style {:.3g} tv {:.3g}{})", l.total, l.content, l.style, l.tv,
                     l.temporal > 0 ? fmt::format(" temporal {:.3g}", l.temporal) : "");
}

StyleImages loadStyleImages(const std::vector<std::string>& specs, int64_t longSide) {
  StyleImages styles;
  for (const auto& spec : specs) {
    auto [path, weight] = splitWeight(spec, "--style");
    styles.images.push_back(resizeLongSide(loadImage(path), longSide));
    styles.blend.push_back(weight);
  }
  return styles;
}

int runOptimize(int argc, char** argv) {
  cxxopts::Options options(
      "stylize optimize",
      "Stylize one image by optimising its pixels (Gatys et al. 2016): slow, the quality reference.\n"
      "  stylize optimize --content photo.jpg --style starry_night.jpg -o out.png\n"
      "  stylize optimize --content photo.jpg --style a.jpg:0.7 --style b.jpg:0.3 --size 384 -o out.jpg\n");
  // clang-format off
  options.add_options()
      ("content", "content photo", cxxopts::value<std::string>())
      ("style", "style image, optionally with a blend weight: starry.jpg:0.7 (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("o,output", "output image (.png .jpg .webp .bmp .tiff); written atomically", cxxopts::value<std::string>())
      ("size", "long side of the output in pixels", cxxopts::value<int>()->default_value("512"))
      ("style-scale", "style image size relative to --size", cxxopts::value<double>()->default_value("1.0"))
      ("iterations", "iterations per scale", cxxopts::value<int>()->default_value("300"))
      ("optimizer", "lbfgs or adam", cxxopts::value<std::string>()->default_value("lbfgs"))
      ("lr", "learning rate (default 1 for lbfgs, 0.02 for adam)", cxxopts::value<double>()->default_value("0"))
      ("init", "start from content, noise or style", cxxopts::value<std::string>()->default_value("content"))
      ("scales", "coarse-to-fine: optimise at 1/2^(N-1) .. 1 of --size", cxxopts::value<int>()->default_value("1"))
      ("preserve-colors", "keep the content's colours: transfer luminance only")
      ("save-every", "also save out_NNNNN.ext every N iterations (0 = off)", cxxopts::value<int>()->default_value("0"));
  // clang-format on
  addLossOptions(options);
  addVggOptions(options);
  addComputeOptions(options);
  auto args = parse(options, argc, argv);

  if (!args.count("content")) throw Error("stylize optimize: --content is required (see --help)");
  if (!args.count("style")) throw Error("stylize optimize: --style is required (see --help)");
  if (!args.count("output")) throw Error("stylize optimize: -o/--output is required (see --help)");
  const fs::path output = args["output"].as<std::string>();
  checkImageOutputPath(output);
  {
    std::vector<fs::path> inputs{args["content"].as<std::string>()};
    for (const auto& spec : args["style"].as<std::vector<std::string>>())
      inputs.push_back(splitWeight(spec, "--style").first);
    checkNotAnInput(output, inputs);
  }
  const int size = args["size"].as<int>();
  if (size < 32 || size > 8192) throw Error("--size must be 32..8192");
  const double styleScale = args["style-scale"].as<double>();
  if (!(styleScale > 0 && styleScale <= 8)) throw Error("--style-scale must be in (0, 8]");
  const int saveEvery = args["save-every"].as<int>();

  GatysOptions opt;
  opt.iterations = args["iterations"].as<int>();
  opt.learningRate = args["lr"].as<double>();
  opt.scales = args["scales"].as<int>();
  opt.seed = args["seed"].as<uint64_t>();
  const std::string optimizer = args["optimizer"].as<std::string>();
  if (optimizer != "lbfgs" && optimizer != "adam") throw Error("--optimizer " + optimizer + ": use lbfgs or adam");
  opt.optimizer = optimizer == "adam" ? GatysOptimizer::kAdam : GatysOptimizer::kLbfgs;
  const std::string init = args["init"].as<std::string>();
  if (init != "content" && init != "noise" && init != "style")
    throw Error("--init " + init + ": use content, noise or style");
  opt.init = init == "noise" ? GatysInit::kNoise : init == "style" ? GatysInit::kStyle : GatysInit::kContent;

  const torch::Device device = applyComputeOptions(args);
  const torch::Tensor content = resizeLongSide(loadImage(args["content"].as<std::string>()), size);
  const StyleImages styles =
      loadStyleImages(args["style"].as<std::vector<std::string>>(), std::lround(size * styleScale));
  const Vgg19 vgg = loadLossNetwork(args, device);
  PerceptualLoss loss(vgg, lossConfigFromArgs(args, vgg));
  loss.setStyle(styles.images, styles.blend);

  std::cerr << "stylize: " << content.size(2) << "x" << content.size(1) << ", " << optimizer << " × " << opt.iterations
            << (opt.scales > 1 ? " per scale, " + std::to_string(opt.scales) + " scales" : std::string()) << ", "
            << torch::get_num_threads() << " threads on " << device << "\n"
            << "stylize: loss " << describeLossConfig(loss.config()) << "\n";

  ProgressBar bar(static_cast<int64_t>(opt.iterations) * opt.scales, "it");
  const torch::Tensor result = optimizeImage(loss, content, styles.images.front(), opt, [&](const GatysProgress& p) {
    const int64_t done = static_cast<int64_t>(p.scale) * p.iterations + p.iteration;
    bar.update(done, describeLoss(p.loss));
    if (saveEvery > 0 && p.scale + 1 == p.scales && p.iteration % saveEvery == 0 && p.iteration < p.iterations)
      saveImage(intermediatePath(output, p.iteration), p.image->detach().squeeze(0).to(torch::kCPU));
  });
  bar.finish();
  saveImage(output, args.count("preserve-colors") ? transferLuminance(result, content) : result);
  std::cerr << "stylize: wrote " << output.string() << "\n";
  return 0;
}

}  // namespace stylize::cli
