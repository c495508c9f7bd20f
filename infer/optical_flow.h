// Dense correspondence between consecutive frames, shared by the flicker metric and --stabilize: where
// each pixel of frame t was in frame t-1, and which pixels can be trusted (Lai et al. 2018's masks).
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/video/tracking.hpp>

namespace stylize {

struct Correspondence {
  cv::Mat mapX, mapY;  // CV_32F absolute coordinates in frame t-1, ready for cv::remap
  cv::Mat valid;       // CV_8U, 1 = not occluded, not on a motion boundary, inside the frame
};

// Content moving by (dx, dy) pixels per frame: the exact flow of a synthetic pan.
Correspondence exactCorrespondence(cv::Size size, double dx, double dy);

// DIS optical flow on 8-bit grayscale frames, both directions, with the forward-backward consistency
// (occlusion) and flow-gradient (motion boundary) tests of Lai et al.
Correspondence estimatedCorrespondence(cv::DISOpticalFlow& dis, const cv::Mat& previous, const cv::Mat& current);

// The same, estimated at `scale` (< 1: faster) and brought back to the full size.
Correspondence scaledCorrespondence(cv::DISOpticalFlow& dis, const cv::Mat& previous, const cv::Mat& current,
                                    double scale);

// 8-bit grayscale of an RGB float image in [0, 1].
cv::Mat grayOf(const cv::Mat& rgb);

}  // namespace stylize
