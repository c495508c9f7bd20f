// A trained style model on disk: the transform network's weights as safetensors, plus a JSON document in
// the "__metadata__" map under "stylize" (architecture, style image, loss, training settings, format
// version), so Python's `safetensors` can read it too.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "nets/transformer_net.h"

namespace stylize {

// Version 2 added architecture.type (compact models are written as version 2; Johnson models stay 1 so
// that older stylize builds still read them); version 3 the pytorch_examples type of imported models (only
// they are written as 3); version 4 architecture.denoise (only models with the input denoiser are written
// as 4: an older build would run them without it, so it must refuse them).
constexpr int kStyleModelVersion = 4;

struct StyleModel {
  TransformerNet net{nullptr};
  nlohmann::json info;  // everything but the weights; info["architecture"] = {type, width, blocks}
};

// {"type": "johnson"|"compact"|"pytorch_examples", "width": w, "blocks": b[, "denoise": σ]}; a missing type
// reads as johnson (version 1), a missing denoise as none.
nlohmann::json architectureJson(const TransformerConfig& config);
TransformerConfig architectureFromJson(const nlohmann::json& json, const std::string& where);

// What `stylize video` and `stylize live` apply with a model unless the command line says otherwise:
// info["video"] = {"stabilize": S, "stabilize_gate": G} (`stylize blend --stabilize` records it), e.g. the
// light, gated smoothing a temporally trained model was measured with. Absent: 0, off. Older builds ignore
// it and run the model without.
struct VideoDefaults {
  double stabilize = 0;      // FrameStabilizer strength, 0..0.95
  double stabilizeGate = 0;  // FrameStabilizer gate, 0..1
};
VideoDefaults videoDefaults(const nlohmann::json& info, const std::string& where);
nlohmann::json videoDefaultsJson(const VideoDefaults& defaults);

// fp16 halves the file; weights are widened back to fp32 on load. Written atomically.
void saveStyleModel(const std::filesystem::path& path, TransformerNet& net, nlohmann::json info, bool fp16 = false);

// A model given by name (`--model starry_night`) is looked up as NAME.safetensors in $STYLIZE_MODELS
// (colon-separated folders), $XDG_DATA_HOME/stylize/models (~/.local/share/stylize/models), the installed
// share/stylize/models beside the binary (bin/../share), the source tree's models/ when run from a build
// folder, and /usr/share/stylize/models. Anything with a folder in it, or an existing file, is a path.
std::vector<std::filesystem::path> modelFolders();
std::filesystem::path findModel(const std::string& nameOrPath);

// Validates the format, version, architecture and every tensor's name, shape and dtype; throws Error
// naming the file and the problem. `path` may be a bare model name (findModel).
StyleModel loadStyleModel(const std::filesystem::path& path);
// The same from a file's bytes; `where` names it in errors.
StyleModel parseStyleModel(const std::string& bytes, const std::string& where);

// The weighted mean of the models' weights (a "model soup", Wortsman et al. 2022; weights are normalised
// to sum to 1). Meaningful for models fine-tuned from one parent: the mean lands between them, often better
// than either (it averages out the noise of each run); unrelated models' channels do not correspond and
// blend into mush. The architectures must match (Error names the file that differs). The metadata is the
// first model's plus "blend": [{model, weight}], in half precision if every part was.
struct BlendPart {
  std::filesystem::path model;
  double weight = 1;
};
StyleModel blendStyleModels(const std::vector<BlendPart>& parts);

}  // namespace stylize
