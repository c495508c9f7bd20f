// --stabilize: temporal smoothing at inference for models trained without a temporal loss. Each output
// frame is blended with the previous output warped along the optical flow of the input, only where the flow
// is trustworthy and the input itself did not change (no occlusion, no lighting change): a recursive filter
// along motion trajectories, so static and smoothly moving areas stop flickering while new content shows at once.
#pragma once

#include <torch/types.h>

#include <opencv2/core.hpp>
#include <opencv2/video/tracking.hpp>

namespace stylize {

class FrameStabilizer {
 public:
  // strength: weight of the warped previous output where it is fully trusted (0..0.95); flowSide: long side
  // at which the flow is estimated (smaller is faster; stylization is blurry at the pixel level anyway).
  explicit FrameStabilizer(double strength = 0.7, int flowSide = 320);

  // Consecutive frames: the input and the model's output, [3, H, W] float in [0, 1] on the CPU.
  torch::Tensor operator()(const torch::Tensor& input, const torch::Tensor& output);

 private:
  cv::Ptr<cv::DISOpticalFlow> dis_;
  double strength_;
  int flowSide_;
  cv::Mat previousGray_, previousInput_, previousOutput_;
};

}  // namespace stylize
