// stylize eval: quality measurements of outputs already on disk.
#include <torch/torch.h>

#include <iostream>

#include "data/error.h"
#include "data/image.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace stylize::cli {
namespace {

// The perceptual loss of finished images against one content photo and the style, with the same loss
// network and weights `optimize` and `train` use: a common yardstick for feed-forward models and the
// Gatys optimizer.
int evalLoss(const cxxopts::ParseResult& args) {
  if (!args.count("content") || !args.count("style") || !args.count("image"))
    throw Error("stylize eval loss: --content, --style and --image are required (see --help)");
  const int size = args["size"].as<int>();
  const torch::Device device = applyComputeOptions(args);
  const torch::Tensor content = resizeLongSide(loadImage(args["content"].as<std::string>()), size);
  const StyleImages styles = loadStyleImages(args["style"].as<std::vector<std::string>>(),
                                             std::lround(size * args["style-scale"].as<double>()));
  const Vgg19 vgg = loadLossNetwork(args, device);
  PerceptualLoss loss(vgg, lossConfigFromArgs(args, vgg));
  loss.setStyle(styles.images, styles.blend);
  const Features targets = loss.contentTargets(content.unsqueeze(0).to(device));
  torch::NoGradGuard noGrad;
  std::cout << "image,content,style,tv,total\n";
  for (const auto& path : args["image"].as<std::vector<std::string>>()) {
    // Compared at the content's size: an output made at another size is resampled first.
    const torch::Tensor image = resizeImage(loadImage(path), content.size(1), content.size(2));
    const LossValues t = LossValues::of(loss(image.unsqueeze(0).to(device), targets));
    std::cout << fmt::format("{},{:.6g},{:.6g},{:.6g},{:.6g}\n", path, t.content, t.style, t.tv, t.total);
  }
  return 0;
}

}  // namespace

int runEval(int argc, char** argv) {
  cxxopts::Options options("stylize eval",
                           "Measure finished outputs.\n"
                           "  stylize eval loss --content photo.jpg --style starry.jpg --image a.jpg --image b.jpg\n"
                           "      perceptual loss (content, style, tv, total) of each image, as CSV\n");
  // clang-format off
  options.add_options()
      ("what", "loss", cxxopts::value<std::string>())
      ("content", "content photo", cxxopts::value<std::string>())
      ("style", "style image (repeatable, file:weight)", cxxopts::value<std::vector<std::string>>())
      ("image", "image to measure (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("size", "long side at which to measure", cxxopts::value<int>()->default_value("512"))
      ("style-scale", "style image size relative to --size", cxxopts::value<double>()->default_value("1.0"));
  // clang-format on
  addLossOptions(options);
  addVggOptions(options);
  addComputeOptions(options);
  options.parse_positional({"what"});
  options.positional_help("loss");
  auto args = parse(options, argc, argv);
  const std::string what = args.count("what") ? args["what"].as<std::string>() : "";
  if (what == "loss") return evalLoss(args);
  throw Error("stylize eval: say what to measure: loss (see --help)");
}

}  // namespace stylize::cli
