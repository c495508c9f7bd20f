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
      "  stylize blend a.safetensors:0.7 b.safetensors:0.3 -o mix.safetensors     weights (normalised)\n"
      "It also records how stylize video and live should run the result unless told otherwise (one model is\n"
      "enough for that; the weights stay as they are):\n"
      "  stylize blend stable.safetensors -o stable_smoothed.safetensors --stabilize 0.8 --stabilize-gate 0.06\n");
  // clang-format off
  options.add_options()
      ("models", "models to average, each optionally MODEL:WEIGHT", cxxopts::value<std::vector<std::string>>())
      ("o,output", "the blended model (.safetensors)", cxxopts::value<std::string>())
      ("stabilize", "record this --stabilize strength as the model's default for video and live (0..0.95; 0 removes it)", cxxopts::value<double>())
      ("stabilize-gate", "record this --stabilize-gate with it (0..1)", cxxopts::value<double>());
  // clang-format on
  options.parse_positional({"models"});
  options.positional_help("MODEL[:WEIGHT] MODEL[:WEIGHT]...");
  const auto args = parse(options, argc, argv);
  const bool recording = args.count("stabilize") || args.count("stabilize-gate");
  const size_t given = args.count("models") ? args["models"].as<std::vector<std::string>>().size() : 0;
  if (given < (recording ? 1u : 2u))
    throw Error(recording ? "stylize blend: give a model (see --help)"
                          : "stylize blend: give two or more models, or --stabilize to set one's default (see --help)");
  if (args.count("stabilize-gate") && !args.count("stabilize"))
    throw Error("stylize blend: --stabilize-gate needs --stabilize (the strength it gates)");
  if (!args.count("output")) throw Error("stylize blend: -o OUTPUT.safetensors is required");
  std::vector<BlendPart> parts;
  for (const std::string& spec : args["models"].as<std::vector<std::string>>()) {
    const auto [model, weight] = splitWeight(spec, "stylize blend");
    parts.push_back({model, weight});
  }
  StyleModel blend = blendStyleModels(parts);
  if (recording) {
    VideoDefaults defaults;
    defaults.stabilize = args["stabilize"].as<double>();
    if (args.count("stabilize-gate")) defaults.stabilizeGate = args["stabilize-gate"].as<double>();
    blend.info["video"] = videoDefaultsJson(defaults);
    videoDefaults(blend.info, "stylize blend");  // the same range checks as on load
    if (blend.info["video"].empty()) blend.info.erase("video");
    if (parts.size() == 1) blend.info.erase("blend");  // a copy with new defaults, not a blend
  }
  const std::filesystem::path output = args["output"].as<std::string>();
  std::vector<std::filesystem::path> inputs;
  for (const BlendPart& part : parts) inputs.push_back(part.model);
  checkNotAnInput(output, inputs);
  saveStyleModel(output, blend.net, blend.info, blend.info["dtype"] == "float16");
  std::cout << "stylize: wrote " << output.string() << " ("
            << (parts.size() == 1 ? std::string("a copy") : std::to_string(parts.size()) + " models blended")
            << (blend.info.contains("video") ? ", video defaults " + blend.info["video"].dump() : std::string())
            << ")\n";
  return 0;
}

}  // namespace stylize::cli
