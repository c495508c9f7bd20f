// stylize import: run the community's pretrained models (pytorch/examples' .pth, the ONNX zoo's .onnx).
#include <chrono>
#include <iomanip>
#include <iostream>

#include "data/error.h"
#include "data/files.h"
#include "nets/model_import.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace stylize::cli {

int runImport(int argc, char** argv) {
  cxxopts::Options options(
      "stylize import",
      "Convert a fast-style-transfer model trained elsewhere into a Stylize model, so that image, video,\n"
      "live, blend, --stabilize, --preserve-colors all run it. Reads pytorch/examples' fast_neural_style\n"
      "TransformerNet: its .pth files (torch.save of the state_dict, 2017's legacy format included; read\n"
      "with PyTorch's own torch.load, which needs python3-torch) and the ONNX model zoo's exports of it\n"
      "(mosaic-9.onnx, candy-9.onnx, ...; needs a build with libonnx-dev). Width and residual blocks come\n"
      "from the file; anything that is not that network is an error that says what was found.\n"
      "  stylize import candy.pth -o models/candy.safetensors\n"
      "  stylize import mosaic-9.onnx -o mosaic.safetensors --fp16      half the size\n"
      "  stylize video in.mp4 --model models/candy.safetensors -o out.mp4\n");
  // clang-format off
  options.add_options()
      ("model", "the .pth, .pt or .onnx file", cxxopts::value<std::string>())
      ("o,output", "the Stylize model to write (.safetensors)", cxxopts::value<std::string>())
      ("fp16", "store the weights in half precision (half the size)");
  // clang-format on
  options.parse_positional({"model"});
  options.positional_help("MODEL.pth|MODEL.onnx");
  const auto args = parse(options, argc, argv);
  if (!args.count("model")) throw Error("stylize import: give the model file to import (see --help)");
  if (!args.count("output")) throw Error("stylize import: -o OUTPUT.safetensors is required");
  const std::filesystem::path input = args["model"].as<std::string>(), output = args["output"].as<std::string>();
  if (output.extension() != ".safetensors") throw Error(output.string() + ": the output must be a .safetensors file");
  checkNotAnInput(output, {input});
  const auto start = std::chrono::steady_clock::now();
  StyleModel model = importModel(input);
  saveStyleModel(output, model.net, model.info, args.count("fp16") > 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const TransformerConfig& c = model.net->config();
  std::cout << "stylize: wrote " << output.string() << " (pytorch/examples TransformerNet, " << c.width << " wide, "
            << c.blocks << " residual blocks, from " << model.info["source"]["format"].get<std::string>() << " in "
            << std::fixed << std::setprecision(1) << seconds << " s)\n";
  return 0;
}

}  // namespace stylize::cli
