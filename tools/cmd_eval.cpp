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
#include "infer/video_decoder.h"
#include "infer/video_pipeline.h"
#endif

#include <sstream>

namespace stylize::cli {
namespace {

// The loss network and style targets every `eval loss` measurement shares with `optimize` and `train`.
struct LossYardstick {
  torch::Device device;
  Vgg19 vgg;
  PerceptualLoss loss;

  explicit LossYardstick(const cxxopts::ParseResult& args)
      : device(applyComputeOptions(args)),
        vgg(loadLossNetwork(args, device)),
        loss(vgg, lossConfigFromArgs(args, vgg)) {
    const StyleImages styles = loadStyleImages(args["style"].as<std::vector<std::string>>(),
                                               std::lround(args["size"].as<int>() * args["style-scale"].as<double>()));
    loss.setStyle(styles.images, styles.blend);
  }

  Features targets(const torch::Tensor& content) { return loss.contentTargets(content.unsqueeze(0).to(device)); }

  // content, image: [3, H, W]; the image is resampled to the content's size (outputs made at another size).
  // `cells` (with --per-layer) gets the style term split by layer and pyramid level.
  LossValues operator()(const torch::Tensor& content, const Features& targets, const torch::Tensor& image,
                        std::vector<double>* cells = nullptr) {
    torch::NoGradGuard noGrad;
    const torch::Tensor resized = resizeImage(image, content.size(1), content.size(2)).unsqueeze(0).to(device);
    if (cells) {
      cells->clear();
      for (const StyleCell& c : loss.styleBreakdown(resized)) cells->push_back(c.value);
    }
    return LossValues::of(loss(resized, targets));
  }

  // "relu1_1@1x,relu2_1@1x,…,relu3_1@4x": each style cell's column, named by layer and downscale factor.
  std::string cellHeader() const {
    std::string header;
    for (int level = 0; level < loss.config().pyramidLevels; ++level)
      for (const auto& l : loss.config().styleLayers) header += fmt::format(",{}@{}x", l.layer, 1 << level);
    return header;
  }
};

std::string lossRow(const std::string& name, const LossValues& t, const std::vector<double>& cells = {}) {
  std::string row = fmt::format("{},{:.6g},{:.6g},{:.6g},{:.6g}", name, t.content, t.style, t.tv, t.total);
  for (double c : cells) row += fmt::format(",{:.6g}", c);
  return row + "\n";
}

// The perceptual loss of finished images against one content photo and the style, with the same loss
// network and weights `optimize` and `train` use: a common yardstick for feed-forward models and the
// Gatys optimizer.
int evalLoss(const cxxopts::ParseResult& args) {
  if (!args.count("content") || !args.count("style") || !args.count("image"))
    throw Error("stylize eval loss: --content, --style and --image are required (see --help)");
  const torch::Tensor content = resizeLongSide(loadImage(args["content"].as<std::string>()), args["size"].as<int>());
  LossYardstick measure(args);
  const bool perLayer = args.count("per-layer") > 0;
  std::cout << "image,content,style,tv,total" << (perLayer ? measure.cellHeader() : "") << "\n";
  const Features targets = measure.targets(content);
  std::vector<double> cells;
  for (const auto& path : args["image"].as<std::vector<std::string>>()) {
    const LossValues t = measure(content, targets, loadImage(path), perLayer ? &cells : nullptr);
    std::cout << lossRow(path, t, cells);
  }
  return 0;
}

#ifdef STYLIZE_HAVE_VIDEO
// The same loss for a stylized video: each of --samples frames spread evenly over the video against the
// input frame it came from, then their mean. One frame says little: a model may do well on one scene and
// wash out another.
int evalVideoLoss(const cxxopts::ParseResult& args, const std::vector<std::string>& videos) {
  if (!args.count("style")) throw Error("stylize eval loss: --style is required (see --help)");
  const int64_t samples = args["samples"].as<int64_t>();
  if (samples < 1) throw Error("--samples must be at least 1");
  av::quietLogs();
  VideoDecoder in(videos[0]), out(videos[1]);
  // A stylized excerpt (--duration) is compared with the start of its input: spread over the shorter.
  const int64_t inFrames = in.info().frames, outFrames = out.info().frames;
  const int64_t frames = std::max<int64_t>(
      inFrames > 0 && outFrames > 0 ? std::min(inFrames, outFrames) : std::max(inFrames, outFrames), 1);
  const int64_t step = std::max<int64_t>(frames / samples, 1);
  LossYardstick measure(args);
  const int size = args["size"].as<int>();
  VideoDecoder::Item inItem, outItem;
  auto next = [](VideoDecoder& decoder, VideoDecoder::Item& item) -> const AVFrame* {
    while (decoder.next(item))
      if (item.frame) return item.frame.get();
    return nullptr;
  };
  const bool perLayer = args.count("per-layer") > 0;
  std::cout << "frame,content,style,tv,total" << (perLayer ? measure.cellHeader() : "") << "\n";
  LossValues sum;
  std::vector<double> cells, cellSum;
  int64_t measured = 0;
  for (int64_t index = 0; measured < samples; ++index) {
    const AVFrame* a = next(in, inItem);
    if (!a) break;
    const AVFrame* b = next(out, outItem);
    if (!b) break;
    if (index % step != step / 2) continue;  // the middle of each stretch, not the first frame (often a fade)
    const torch::Tensor content = resizeLongSide(framesToTensor({a}, torch::kCPU)[0], size);
    const LossValues t =
        measure(content, measure.targets(content), framesToTensor({b}, torch::kCPU)[0], perLayer ? &cells : nullptr);
    std::cout << lossRow(std::to_string(index), t, cells);
    sum += t;
    cellSum.resize(cells.size());
    for (size_t i = 0; i < cells.size(); ++i) cellSum[i] += cells[i];
    ++measured;
  }
  if (measured == 0) throw Error(videos[0] + ": no video frames");
  for (double& c : cellSum) c /= double(measured);
  std::cout << lossRow("mean", sum / double(measured), cellSum);
  return 0;
}
#endif

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
  options.skipCuts = !args.count("keep-cuts");
  av::quietLogs();
  const FlickerResult r = warpingError(videos[0], videos[1], options);
  if (args.count("per-pair")) {
    std::cout << "frame,valid_fraction,input_warping_error,stylized_warping_error,cut,still_fraction,"
                 "stylized_still_error,stylized_moving_error\n";
    for (const FramePairError& p : r.perPair)
      std::cout << fmt::format("{},{:.3f},{:.6g},{:.6g},{},{:.3f},{:.6g},{:.6g}\n", p.frame, p.validFraction,
                               p.inputError, p.outputError, p.cut ? 1 : 0, p.stillFraction(), p.outputStillError(),
                               p.outputMovingError());
    return 0;
  }
  std::cout << "input,stylized,pairs,flow,valid_fraction,input_warping_error,stylized_warping_error,ratio,cuts,"
               "still_fraction,stylized_still_error,stylized_moving_error\n"
            << fmt::format("{},{},{},{},{:.3f},{:.6g},{:.6g},{:.3f},{},{:.3f},{:.6g},{:.6g}\n", videos[0], videos[1],
                           r.pairs, options.exactMotion ? "exact" : "dis-medium", r.validFraction, r.inputError,
                           r.outputError, r.ratio(), r.cuts, r.stillFraction, r.outputStillError, r.outputMovingError);
  return 0;
}
#endif

}  // namespace

int runEval(int argc, char** argv) {
  cxxopts::Options options(
      "stylize eval",
      "Measure finished outputs.\n"
      "  stylize eval loss --content photo.jpg --style starry.jpg --image a.jpg --image b.jpg\n"
      "      perceptual loss (content, style, tv, total) of each image, as CSV\n"
      "  stylize eval loss --content photo.jpg --style starry.jpg --image a.jpg --per-layer --pyramid 3\n"
      "      also the style loss per layer and pyramid level: structure (relu3_1@2x, @4x) apart from palette\n"
      "  stylize eval loss input.mp4 stylized.mp4 --style starry.jpg --samples 8\n"
      "      the same for 8 frames spread over a stylized video, and their mean\n"
      "  stylize eval flicker input.mp4 stylized.mp4\n"
      "      warping error (Lai et al. 2018) of the stylized video and of the input (the floor),\n"
      "      the stylized one also split into still pixels (its answer to noise) and moving ones\n"
      "  stylize eval flicker pan.mp4 stylized.mp4 --exact-motion 4,0\n"
      "      with the known motion of a synthetic pan instead of optical flow\n"
      "  stylize eval flicker input.mp4 stylized.mp4 --per-pair\n"
      "      each frame pair's errors; shot changes (cuts) are marked and left out of the means\n");
  // clang-format off
  options.add_options()
      ("what", "loss or flicker", cxxopts::value<std::string>())
      ("videos", "input and stylized video", cxxopts::value<std::vector<std::string>>())
      ("samples", "loss of a video: frames to measure, spread evenly", cxxopts::value<int64_t>()->default_value("8"))
      ("frames", "flicker: measure at most this many frames (0 = all)", cxxopts::value<int64_t>()->default_value("0"))
      ("exact-motion", "flicker: content motion DX,DY in pixels per frame instead of optical flow", cxxopts::value<std::string>())
      ("keep-cuts", "flicker: count shot changes too (by default a pair the flow cannot connect is left out)")
      ("per-layer", "loss: also the style term per layer and pyramid level, columns LAYER@Nx (the output downscaled N times; the style column is the mean over levels of each level's sum); the deepest layer at 2x and 4x tracks the painting's structure, relu1_1 mostly its palette")
      ("per-pair", "flicker: one CSV row per frame pair instead of the means (find the pairs that dominate)")
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
  const auto videos = args.count("videos") ? args["videos"].as<std::vector<std::string>>() : std::vector<std::string>{};
#ifdef STYLIZE_HAVE_VIDEO
  if (what == "loss" && videos.size() == 2) return evalVideoLoss(args, videos);
#endif
  if (what == "loss") return evalLoss(args);
#ifdef STYLIZE_HAVE_VIDEO
  if (what == "flicker") return evalFlicker(args);
#endif
  throw Error("stylize eval: say what to measure: loss or flicker (see --help)");
}

}  // namespace stylize::cli
