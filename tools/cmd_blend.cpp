// stylize blend: average the weights of models fine-tuned from one parent into one model.
#include <iostream>

#include "data/error.h"
#include "data/files.h"
#include "nets/style_model.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace stylize::cli {

int runBlend(int argc, char** argv) {
  cxxopts::Options options(
      "stylize blend",
      "Average the weights of models fine-tuned from one parent (a \"model soup\"): the result sits between\n"
      "them and often beats both, e.g. a steadier and a more textured fine-tune of the same model.\n"
      "Models trained from different starts do not blend (their channels do not correspond).\n"
      "  stylize blend steady.safetensors textured.safetensors -o mix.safetensors\n"
      "  stylize blend a.safetensors:0.7 b.safetensors:0.3 -o mix.safetensors     weights (normalised)\n");
  // clang-format off
  options.add_options()
      ("models", "models to average, each optionally MODEL:WEIGHT", cxxopts::value<std::vector<std::string>>())
      ("o,output", "the blended model (.safetensors)", cxxopts::value<std::string>());
  // clang-format on
  options.parse_positional({"models"});
  options.positional_help("MODEL[:WEIGHT] MODEL[:WEIGHT]...");
  const auto args = parse(options, argc, argv);
  if (!args.count("models") || args["models"].as<std::vector<std::string>>().size() < 2)
    throw Error("stylize blend: give two or more models (see --help)");
  if (!args.count("output")) throw Error("stylize blend: -o OUTPUT.safetensors is required");
  std::vector<BlendPart> parts;
  for (const std::string& spec : args["models"].as<std::vector<std::string>>()) {
    const auto [model, weight] = splitWeight(spec, "stylize blend");
    parts.push_back({model, weight});
  }
  StyleModel blend = blendStyleModels(parts);
  const std::filesystem::path output = args["output"].as<std::string>();
  std::vector<std::filesystem::path> inputs;
  for (const BlendPart& part : parts) inputs.push_back(part.model);
  checkNotAnInput(output, inputs);
  saveStyleModel(output, blend.net, blend.info, blend.info["dtype"] == "float16");
  std::cout << "stylize: wrote " << output.string() << " (" << parts.size() << " models blended)\n";
  return 0;
}

}  // namespace stylize::cli
