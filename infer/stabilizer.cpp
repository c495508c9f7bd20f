#include "infer/stabilizer.h"

#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include "data/error.h"
#include "infer/optical_flow.h"

namespace stylize {

namespace {

cv::Mat toMat(const torch::Tensor& image) {
  torch::Tensor hwc = image.permute({1, 2, 0}).contiguous().to(torch::kFloat32);
  return cv::Mat(int(hwc.size(0)), int(hwc.size(1)), CV_32FC3, hwc.data_ptr()).clone();
}

torch::Tensor toTensor(const cv::Mat& mat) {
  return torch::from_blob(mat.data, {mat.rows, mat.cols, 3}, torch::kFloat32).permute({2, 0, 1}).clone();
}

// How much an input change counts as "different content": a 0.05 step per channel leaves ~2 % of the blend.
constexpr float kInputSimilarity = 0.002f;

}  // namespace

FrameStabilizer::FrameStabilizer(double strength, double gate, int flowSide)
    : dis_(cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_MEDIUM)),
      strength_(strength),
      outputSimilarity_(float(3 * gate * gate)),
      flowSide_(flowSide) {
  if (!(strength >= 0 && strength <= 0.95)) throw Error("--stabilize must be between 0 and 0.95");
  if (!(gate >= 0 && gate <= 1)) throw Error("--stabilize-gate must be between 0 and 1");
}

torch::Tensor FrameStabilizer::operator()(const torch::Tensor& input, const torch::Tensor& output) {
  const cv::Mat in = toMat(input);
  cv::Mat out = toMat(output);
  const cv::Mat gray = grayOf(in);
  if (!previousGray_.empty() && previousGray_.size() == gray.size() && strength_ > 0) {
    const double scale = std::min(1.0, double(flowSide_) / std::max(gray.cols, gray.rows));
    const Correspondence c = scaledCorrespondence(*dis_, previousGray_, gray, scale);
    cv::Mat warpedInput, warpedOutput;
    cv::remap(previousInput_, warpedInput, c.mapX, c.mapY, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    cv::remap(previousOutput_, warpedOutput, c.mapX, c.mapY, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    const float strength = float(strength_);
    for (int y = 0; y < out.rows; ++y) {
      const uint8_t* valid = c.valid.ptr<uint8_t>(y);
      const cv::Vec3f* a = in.ptr<cv::Vec3f>(y);
      const cv::Vec3f* b = warpedInput.ptr<cv::Vec3f>(y);
      const cv::Vec3f* w = warpedOutput.ptr<cv::Vec3f>(y);
      cv::Vec3f* o = out.ptr<cv::Vec3f>(y);
      for (int x = 0; x < out.cols; ++x) {
        if (!valid[x]) continue;
        const cv::Vec3f d = a[x] - b[x];
        float weight = strength * std::exp(-d.dot(d) / kInputSimilarity);
        if (outputSimilarity_ > 0) {
          const cv::Vec3f e = w[x] - o[x];
          weight *= std::exp(-e.dot(e) / outputSimilarity_);
        }
        o[x] = weight * w[x] + (1 - weight) * o[x];
      }
    }
  }
  previousGray_ = gray;
  previousInput_ = in;
  previousOutput_ = out;
  return toTensor(out);
}

VideoDefaults chooseStabilize(std::optional<double> strength, std::optional<double> gate, const VideoDefaults& model) {
  if (!strength && !gate) return model;
  VideoDefaults chosen;
  chosen.stabilize = strength ? *strength : (model.stabilize > 0 ? model.stabilize : 0.7);
  chosen.stabilizeGate = gate.value_or(0);
  return chosen;
}

}  // namespace stylize
