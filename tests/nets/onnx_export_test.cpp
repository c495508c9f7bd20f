// The exported ONNX file run by a second runtime, OpenCV's DNN module: it must give our pixels.
#include <gtest/gtest.h>

#include <opencv2/dnn.hpp>

#include "data/error.h"
#include "nets/model_import.h"
#include "tests/test_util.h"

namespace stylize {
namespace {
namespace fs = std::filesystem;

torch::Tensor runOpenCv(const fs::path& onnx, const torch::Tensor& image) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(onnx.string());
  const torch::Tensor input = image.contiguous();
  const int shape[] = {1, 3, int(input.size(2)), int(input.size(3))};
  cv::Mat blob(4, shape, CV_32F, input.data_ptr<float>());
  net.setInput(blob, "input");
  cv::Mat out = net.forward("output");
  std::vector<int64_t> sizes;
  for (int i = 0; i < out.dims; ++i) sizes.push_back(out.size[i]);
  return torch::from_blob(out.ptr<float>(), sizes, torch::kFloat32).clone();
}

struct Case {
  std::string name;
  TransformerConfig config;
};

TEST(OnnxExport, OpenCvRunsEveryArchitectureAsWeDo) {
  test::TempDir dir;
  for (const Case& c :
       {Case{"johnson", {8, 2, Architecture::kJohnson}}, Case{"compact", {8, 2, Architecture::kCompact}},
        Case{"pytorch_examples", {8, 2, Architecture::kPyTorchExamples}},
        Case{"johnson_denoise", {8, 2, Architecture::kJohnson, 0.05}}}) {
    torch::manual_seed(11);
    TransformerNet net(c.config);
    {
      torch::NoGradGuard noGrad;  // trained-looking instance norm parameters, and an output that is not flat
      for (auto& p : net->named_parameters())
        if (p.value().dim() == 1) p.value().uniform_(0.5, 1.5);
      if (c.config.type == Architecture::kPyTorchExamples) net->named_parameters()["deconv3.conv.weight"].mul_(300);
    }
    net->eval();
    for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{{37, 29}, {50, 41}}) {
      SCOPED_TRACE(c.name + " " + std::to_string(w) + "x" + std::to_string(h));
      const torch::Tensor image = torch::rand({1, 3, h, w});
      torch::Tensor ours;
      {
        torch::NoGradGuard noGrad;
        ours = net->forward(image);
      }
      const fs::path file = dir / (c.name + ".onnx");
      exportOnnx(net, file, {false, h, w});
      const torch::Tensor theirs = runOpenCv(file, image);
      ASSERT_EQ(theirs.sizes(), ours.sizes());
      const double difference = (theirs - ours).abs().max().item<double>();
      EXPECT_LT(difference, 1e-3);
      EXPECT_GT(ours.std().item<double>(), 0.02);
      std::printf("%s %lldx%lld: OpenCV DNN vs LibTorch, largest difference %.2e\n", c.name.c_str(), (long long)w,
                  (long long)h, difference);
    }
    // The dynamic-size file passes ONNX's checker (exportOnnx runs it) and holds the shape arithmetic.
    exportOnnx(net, dir / (c.name + "_dynamic.onnx"));
    EXPECT_GT(fs::file_size(dir / (c.name + "_dynamic.onnx")), fs::file_size(dir / (c.name + ".onnx")) / 2);
  }
}

}  // namespace
}  // namespace stylize
