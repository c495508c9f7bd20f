// --stabilize: temporal smoothing at inference for models trained without a temporal loss. Each output
// frame is blended with the previous output warped along the optical flow of the input, only where the flow
// is trustworthy and the input itself did not change (no occlusion, no lighting change): a recursive filter
// along motion trajectories, so static and smoothly moving areas stop flickering while new content shows at once.
// An optional gate on the output's own change makes it a bilateral filter in time: a temporally trained
// model's leftover flicker is small (strokes that wobble), while its large changes are strokes it means to
// paint; blending those as well only averages the painting away.
#pragma once

#include <torch/types.h>

#include <opencv2/core.hpp>
#include <opencv2/video/tracking.hpp>
#include <optional>

#include "nets/style_model.h"

namespace stylize {

class FrameStabilizer {
 public:
  // strength: weight of the warped previous output where it is fully trusted (0..0.95); gate: 0 blends every
  // change, G > 0 (0..1) only changes of the output up to about G per channel (root mean square over RGB),
  // larger ones pass through; flowSide: long side at which the flow is estimated (smaller is faster;
  // stylization is blurry at the pixel level anyway).
  explicit FrameStabilizer(double strength = 0.7, double gate = 0, int flowSide = 320);

  // Consecutive frames: the input and the model's output, [3, H, W] float in [0, 1] on the CPU.
  torch::Tensor operator()(const torch::Tensor& input, const torch::Tensor& output);

 private:
  cv::Ptr<cv::DISOpticalFlow> dis_;
  double strength_;
  float outputSimilarity_;  // 3·gate², the squared RGB distance at which the blend falls to 1/e (0 = no gate)
  int flowSide_;
  cv::Mat previousGray_, previousInput_, previousOutput_;
};

// --stabilize and --stabilize-gate as given on the command line (nullopt: not given) against the model's
// recommendation (VideoDefaults): the model's pair applies only when neither flag is given; --stabilize alone
// means no gate, as for any model; --stabilize-gate alone gates the model's strength (or 0.7).
VideoDefaults chooseStabilize(std::optional<double> strength, std::optional<double> gate, const VideoDefaults& model);

}  // namespace stylize
