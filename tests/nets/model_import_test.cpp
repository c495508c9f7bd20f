#include "nets/model_import.h"

#include <gtest/gtest.h>

#include <fstream>

#include "data/error.h"
#include "data/safetensors.h"
#include "tests/test_util.h"

namespace stylize {
namespace {
namespace fs = std::filesystem;

fs::path fixtures() { return test::sourceDir() / "tests" / "nets" / "fixtures"; }

// The fixtures are pytorch/examples' TransformerNet (8 wide) with seeded random weights, saved and exported by
// PyTorch itself, with PyTorch's output for two odd-sized images (tests/nets/fixtures/make_pytorch_examples.py).
// Imported from each format, our network must give PyTorch's pixels.
void expectPyTorchsOutput(StyleModel model, const std::string& file) {
  EXPECT_EQ(model.net->config(), (TransformerConfig{8, 5, Architecture::kPyTorchExamples}));
  const Safetensors expected = readSafetensors(fixtures() / "pytorch_examples_expected.safetensors");
  torch::NoGradGuard noGrad;
  for (const std::string i : {"0", "1"}) {
    const torch::Tensor input = expected.tensors.at("input" + i), theirs = expected.tensors.at("output" + i);
    const int64_t h = input.size(2), w = input.size(3);
    ASSERT_GT(theirs.size(2), h);  // sizes not divisible by 4 come out larger from PyTorch: compare its top left
    using torch::indexing::Slice;
    const torch::Tensor reference = theirs.index({Slice(), Slice(), Slice(0, h), Slice(0, w)}) / 255;
    const torch::Tensor ours = model.net->forward(input / 255);
    EXPECT_EQ(ours.sizes(), input.sizes());
    const double difference = (ours - reference).abs().max().item<double>();
    EXPECT_LT(difference, 1e-4) << file << " image " << i;
    std::printf("%s, %lldx%lld: largest difference to PyTorch %.2e (of 1)\n", file.c_str(), (long long)w, (long long)h,
                difference);
    EXPECT_GT(reference.std().item<double>(), 0.05);  // a picture, not a flat field that anything would match
  }
}

TEST(ModelImport, PthZipAndLegacyAndOnnxGivePyTorchsOutput) {
  for (const std::string file : {"pytorch_examples.pth", "pytorch_examples_legacy.pth", "pytorch_examples.onnx"}) {
    SCOPED_TRACE(file);
    if (file.find(".onnx") != std::string::npos && !onnxSupported()) GTEST_SKIP() << "built without libonnx-dev";
    const StyleModel model = importModel(fixtures() / file);
    expectPyTorchsOutput(model, file);
    EXPECT_EQ(model.info["source"]["file"], file);
    EXPECT_EQ(model.info["source"]["format"], file.find(".onnx") != std::string::npos ? "onnx" : "pth");
    EXPECT_EQ(model.info["source"]["fingerprint"].get<std::string>().size(), 16u);

    // Saved in our format and loaded back, it is the same network (format version 3).
    test::TempDir dir;
    TransformerNet net = model.net;
    saveStyleModel(dir / "imported.safetensors", net, model.info);
    const StyleModel loaded = loadStyleModel(dir / "imported.safetensors");
    EXPECT_EQ(loaded.info["version"], 3);
    expectPyTorchsOutput(loaded, file);
  }
}

TEST(ModelImport, FilesThatAreNotThatNetworkAreClearErrors) {
  test::TempDir dir;
  auto expectError = [](const fs::path& file, const std::string& says) {
    try {
      importModel(file);
      ADD_FAILURE() << file << " was imported";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(file.filename().string()), std::string::npos) << message;
      EXPECT_NE(message.find(says), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  };
  std::ofstream(dir / "garbage.pth") << "not a pickle";
  expectError(dir / "garbage.pth", "garbage.pth");
  std::ofstream(dir / "garbage.onnx") << "not a protobuf at all \xff\xff\xff";
  expectError(dir / "garbage.onnx", onnxSupported() ? "ONNX" : "without ONNX");
  expectError(dir / "missing.pth", "no such file");
  std::ofstream(dir / "model.h5") << "x";
  expectError(dir / "model.h5", ".pth, .pt");
  // A state_dict of some other network: our own model file's tensors under .pth names would be refused by
  // torch.load; a real PyTorch file with other keys is made by the converter's own format, safetensors.
  Safetensors other;
  other.tensors["features.0.weight"] = torch::zeros({64, 3, 3, 3});
  writeSafetensors(dir / "other.safetensors", other);
  fs::copy_file(dir / "other.safetensors", dir / "other.pth");
  expectError(dir / "other.pth", "other.pth");
}

}  // namespace
}  // namespace stylize
