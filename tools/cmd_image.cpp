// stylize image: one forward pass of a trained model per photo.
#include <torch/torch.h>

#include <iostream>

#include "data/error.h"
#include "data/files.h"
#include "data/image.h"
#include "infer/stylizer.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace fs = std::filesystem;

namespace stylize::cli {

Precision precisionFromArgs(const cxxopts::ParseResult& args) {
  const std::string name = args["precision"].as<std::string>();
  if (args.count("fp16") && name != "fp32" && name != "fp16") throw Error("--fp16 contradicts --precision " + name);
  if (args.count("fp16") || name == "fp16") return Precision::kFloat16;
  if (name == "bf16") return Precision::kBFloat16;
  if (name != "fp32") throw Error("--precision must be fp32, fp16 or bf16, not '" + name + "'");
  return Precision::kFloat32;
}

StylizeOptions stylizeOptionsFromArgs(const cxxopts::ParseResult& args) {
  StylizeOptions o;
  o.strength = args["strength"].as<double>();
  if (!(o.strength >= 0 && o.strength <= 1)) throw Error("--strength must be between 0 and 1");
  o.preserveColors = args.count("preserve-colors") > 0;
  return o;
}

std::string singleModel(const cxxopts::ParseResult& args, const std::string& command) {
  if (!args.count("model")) throw Error(command + ": --model is required (see --help)");
  const auto models = args["model"].as<std::vector<std::string>>();
  if (models.size() != 1) throw Error(command + ": give one --model (stylize live takes several)");
  return models.front();
}

void addStylizeOptions(cxxopts::Options& options) {
  // clang-format off
  options.add_options("Stylization")
      ("m,model", "style model (.safetensors from stylize train)", cxxopts::value<std::vector<std::string>>())
      ("strength", "blend with the input: 0 = original, 1 = fully stylized", cxxopts::value<double>()->default_value("1"))
      ("preserve-colors", "keep the input's colours (luminance-only stylization)")
      ("precision", "fp32, or fp16 / bf16 on CUDA (half the memory traffic; tensor cores)", cxxopts::value<std::string>()->default_value("fp32"))
      ("fp16", "the same as --precision fp16");
  // clang-format on
}

void addStabilizeOptions(cxxopts::Options& options) {
  // clang-format off
  options.add_options("Flicker")
      ("stabilize", "reduce flicker: blend each output with the previous one moved along the input's optical flow, where the input itself stayed (strength 0..0.95; 0.7 when given without a value; default: the model's recommendation, else off)", cxxopts::value<double>()->implicit_value("0.7"))
      ("stabilize-gate", "blend only small changes of the output, up to about G per channel (0..1, e.g. 0.06): the leftover wobble of a temporally trained model, not the strokes it repaints; 0 = blend every change", cxxopts::value<double>());
  // clang-format on
}

StabilizeFlags stabilizeFlagsFromArgs(const cxxopts::ParseResult& args) {
  StabilizeFlags flags;
  if (args.count("stabilize")) flags.strength = args["stabilize"].as<double>();
  if (args.count("stabilize-gate")) flags.gate = args["stabilize-gate"].as<double>();
  if (flags.strength && !(*flags.strength >= 0 && *flags.strength <= 0.95))
    throw Error("--stabilize must be between 0 and 0.95");
  if (flags.gate && !(*flags.gate >= 0 && *flags.gate <= 1)) throw Error("--stabilize-gate must be between 0 and 1");
  return flags;
}

void noteModelStabilize(const StabilizeFlags& flags, const Stylizer& stylizer) {
  if (flags.strength || flags.gate) return;
  const VideoDefaults model = videoDefaults(stylizer.info(), stylizer.name());
  if (model.stabilize > 0)
    std::cerr << fmt::format(
        "stylize: note: {} smooths flicker as its model recommends (--stabilize={:g} --stabilize-gate={:g}); "
        "--stabilize=0 turns it off\n",
        stylizer.name(), model.stabilize, model.stabilizeGate);
}

int runImage(int argc, char** argv) {
  cxxopts::Options options("stylize image",
                           "Stylize photos with a trained model: one forward pass each.\n"
                           "  stylize image --model starry.safetensors photo.jpg -o out.jpg\n"
                           "  stylize image --model starry.safetensors a.jpg b.png c.webp -o out/ --size 1024\n");
  // clang-format off
  options.add_options()
      ("inputs", "input images", cxxopts::value<std::vector<std::string>>())
      ("o,output", "output image (one input) or folder (created; names INPUT_MODEL.EXT)", cxxopts::value<std::string>())
      ("size", "long side to stylize at (0 = as is); the style's scale follows the size", cxxopts::value<int>()->default_value("0"));
  // clang-format on
  addStylizeOptions(options);
  addComputeOptions(options);
  options.parse_positional({"inputs"});
  options.positional_help("INPUT...");
  auto args = parse(options, argc, argv);
  const std::string model = singleModel(args, "stylize image");
  if (!args.count("inputs")) throw Error("stylize image: no input images (see --help)");
  if (!args.count("output")) throw Error("stylize image: -o/--output is required (see --help)");
  const auto inputs = args["inputs"].as<std::vector<std::string>>();
  const fs::path output = args["output"].as<std::string>();
  const int size = args["size"].as<int>();
  if (size != 0 && (size < 16 || size > 16384)) throw Error("--size must be 0 or 16..16384");
  const StylizeOptions stylizeOptions = stylizeOptionsFromArgs(args);

  // One input and an image name: a file. Otherwise a folder, created if needed.
  std::error_code ec;
  const bool toFolder = inputs.size() > 1 || fs::is_directory(output, ec) || output.extension().empty();
  if (toFolder) {
    fs::create_directories(output, ec);
    if (!fs::is_directory(output, ec)) throw Error(output.string() + ": cannot create the output folder");
  } else {
    checkImageOutputPath(output);
  }

  const torch::Device device = applyComputeOptions(args);
  Stylizer stylizer(model, device, precisionFromArgs(args));
  // Every target is known before anything is written: none may be an input, and no two inputs may share
  // one (a/p.png and b/p.png both make OUT/p_MODEL.png).
  std::vector<fs::path> targets;
  const InputFiles inputFiles(std::vector<fs::path>(inputs.begin(), inputs.end()));
  std::map<fs::path, size_t> targetOf;  // normalised target → the input writing it
  for (size_t index = 0; index < inputs.size(); ++index) {
    const std::string& input = inputs[index];
    targets.push_back(toFolder ? output / (fs::path(input).stem().string() + "_" + stylizer.name() +
                                           fs::path(input).extension().string())
                               : output);
    inputFiles.checkNotAnInput(targets.back());
    const auto [clash, added] = targetOf.emplace(targets.back().lexically_normal(), index);
    if (!added)
      throw Error(targets.back().string() + ": both " + inputs[clash->second] + " and " + input +
                  " would be written there (give them different names)");
  }
  int failures = 0;
  for (size_t index = 0; index < inputs.size(); ++index) {
    const std::string& input = inputs[index];
    const fs::path& target = targets[index];
    try {
      torch::Tensor image = loadImage(input);
      const int64_t h = image.size(1), w = image.size(2);
      if (size > 0) image = resizeLongSide(image, size);
      const auto t0 = std::chrono::steady_clock::now();
      torch::Tensor out = stylizer(image, stylizeOptions).to(torch::kCPU);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (size > 0) out = resizeImage(out, h, w);
      saveImage(target, out);
      std::cerr << fmt::format("stylize: {} → {} ({}x{}, {:.0f} ms)\n", input, target.string(), image.size(2),
                               image.size(1), ms);
    } catch (const Error& e) {
      // Keep going through a batch of photos; the exit code reports the failure.
      std::cerr << "stylize: error: " << e.what() << "\n";
      ++failures;
    }
  }
  return failures ? 1 : 0;
}

}  // namespace stylize::cli
