// stylize export: our models as ONNX, for runtimes without Stylize (OpenCV, onnxruntime, the browser).
#include <iostream>

#include "data/error.h"
#include "data/files.h"
#include "nets/model_import.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace stylize::cli {

int runExport(int argc, char** argv) {
  cxxopts::Options options(
      "stylize export",
      "Write a Stylize model (any architecture: johnson, compact, imported) as an ONNX file (opset 13)\n"
      "that runs without Stylize. Input \"input\" and output \"output\": [N, 3, H, W] RGB in 0..1.\n"
      "Height and width are dynamic (onnxruntime, onnxruntime-web); --size fixes them, which runtimes\n"
      "without shape arithmetic need (OpenCV's DNN module).\n"
      "  stylize export models/starry_night.safetensors -o starry_night.onnx\n"
      "  stylize export models/starry_night_live.safetensors -o live_640x480.onnx --size 640x480   for OpenCV\n"
      "  stylize export models/great_wave.safetensors -o great_wave_fp16.onnx --fp16              for GPUs\n");
  // clang-format off
  options.add_options()
      ("model", "the Stylize model (.safetensors)", cxxopts::value<std::string>())
      ("o,output", "the ONNX file to write (.onnx)", cxxopts::value<std::string>())
      ("size", "WIDTHxHEIGHT: a fixed input size instead of a dynamic one", cxxopts::value<std::string>())
      ("fp16", "weights, input and output in half precision");
  // clang-format on
  options.parse_positional({"model"});
  options.positional_help("MODEL.safetensors");
  const auto args = parse(options, argc, argv);
  if (!args.count("model")) throw Error("stylize export: give the model to export (see --help)");
  if (!args.count("output")) throw Error("stylize export: -o OUTPUT.onnx is required");
  const std::filesystem::path input = args["model"].as<std::string>(), output = args["output"].as<std::string>();
  if (output.extension() != ".onnx") throw Error(output.string() + ": the output must be an .onnx file");
  OnnxExportOptions exportOptions;
  exportOptions.fp16 = args.count("fp16") > 0;
  if (args.count("size")) {
    const std::string size = args["size"].as<std::string>();
    int width = 0, height = 0;
    char x = 0, extra = 0;
    if (std::sscanf(size.c_str(), "%d%c%d%c", &width, &x, &height, &extra) != 3 || x != 'x' || width <= 0 ||
        height <= 0)
      throw Error("--size " + size + ": give WIDTHxHEIGHT, e.g. 640x480");
    exportOptions.fixedWidth = width;
    exportOptions.fixedHeight = height;
  }
  checkNotAnInput(output, {input});
  checkWritable(output);
  StyleModel model = loadStyleModel(input);
  exportOnnx(model.net, output, exportOptions);
  const TransformerConfig& c = model.net->config();
  std::cout << "stylize: wrote " << output.string() << " (" << architectureName(c.type) << " " << c.width << "/"
            << c.blocks << ", " << (exportOptions.fp16 ? "fp16" : "fp32") << ", "
            << (exportOptions.fixedWidth
                    ? std::to_string(exportOptions.fixedWidth) + "x" + std::to_string(exportOptions.fixedHeight)
                    : std::string("any size"))
            << ", " << std::filesystem::file_size(output) / 1024 << " KB)\n";
  return 0;
}

}  // namespace stylize::cli
