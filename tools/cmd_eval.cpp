// stylize eval: quality measurements of outputs already on disk.
#include <torch/torch.h>

#include <iostream>

#include "data/error.h"
#include "data/image.h"
#include "tools/cli.h"
#include "tools/commands.h"
#ifdef STYLIZE_HAVE_VIDEO
#include "infer/ffmpeg.h"
#include "infer/flicker.h"
#endif

#include <sstream>

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

#ifdef STYLIZE_HAVE_VIDEO
// Warping error (Lai et al. 2018) of a stylized video against its input, next to the input's own.
int evalFlicker(const cxxopts::ParseResult& args) {
  const auto videos = args.count("videos") ? args["videos"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (videos.size() != 2) throw Error("stylize eval flicker: give the input video and the stylized video (see --help)");
  FlickerOptions options;
  options.maxFrames = args["frames"].as<int64_t>();
  if (args.count("exact-motion")) {
    const std::string spec = args["exact-motion"].as<std::string>();
    double dx = 0, dy = 0;
    char comma = 0;
    std::istringstream in(spec);
    if (!(in >> dx >> comma >> dy) || comma != ',')
      throw Error("--exact-motion " + spec + ": expected DX,DY in pixels per frame, e.g. 4,0");
    options.exactMotion = std::make_pair(dx, dy);
  }
  av::quietLogs();
  const FlickerResult r = warpingError(videos[0], videos[1], options);
  std::cout << "input,stylized,pairs,flow,valid_fraction,input_warping_error,stylized_warping_error,ratio\n"
            << fmt::format("{},{},{},{},{:.3f},{:.6g},{:.6g},{:.3f}\n", videos[0], videos[1], r.pairs,
                           options.exactMotion ? "exact" : "dis-medium", r.validFraction, r.inputError, r.outputError,
                           r.ratio());
  return 0;
}
#endif

}  // namespace

int runEval(int argc, char** argv) {
  cxxopts::Options options("stylize eval",
                           "Measure finished outputs.\n"
                           "  stylize eval loss --content photo.jpg --style starry.jpg --image a.jpg --image b.jpg\n"
                           "      perceptual loss (content, style, tv, total) of each image, as CSV\n"
                           "  stylize eval flicker input.mp4 stylized.mp4\n"
                           "      warping error (Lai et al. 2018) of the stylized video and of the input (the floor)\n"
                           "  stylize eval flicker pan.mp4 stylized.mp4 --exact-motion 4,0\n"
                           "      with the known motion of a synthetic pan instead of optical flow\n");
  // clang-format off
  options.add_options()
      ("what", "loss or flicker", cxxopts::value<std::string>())
      ("videos", "flicker: input and stylized video", cxxopts::value<std::vector<std::string>>())
      ("frames", "flicker: measure at most this many frames (0 = all)", cxxopts::value<int64_t>()->default_value("0"))
      ("exact-motion", "flicker: content motion DX,DY in pixels per frame instead of optical flow", cxxopts::value<std::string>())
      ("content", "content photo", cxxopts::value<std::string>())
      ("style", "style image (repeatable, file:weight)", cxxopts::value<std::vector<std::string>>())
      ("image", "image to measure (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("size", "long side at which to measure", cxxopts::value<int>()->default_value("512"))
      ("style-scale", "style image size relative to --size", cxxopts::value<double>()->default_value("1.0"));
  // clang-format on
  addLossOptions(options);
  addVggOptions(options);
  addComputeOptions(options);
  options.parse_positional({"what", "videos"});
  options.positional_help("loss|flicker [INPUT STYLIZED]");
  auto args = parse(options, argc, argv);
  const std::string what = args.count("what") ? args["what"].as<std::string>() : "";
  if (what == "loss") return evalLoss(args);
#ifdef STYLIZE_HAVE_VIDEO
  if (what == "flicker") return evalFlicker(args);
#endif
  throw Error("stylize eval: say what to measure: loss or flicker (see --help)");
}

}  // namespace stylize::cli
