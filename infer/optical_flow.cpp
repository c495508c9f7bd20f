#include "infer/optical_flow.h"

#include <opencv2/imgproc.hpp>

namespace stylize {

cv::Mat grayOf(const cv::Mat& rgb) {
  cv::Mat g, g8;
  cv::cvtColor(rgb, g, cv::COLOR_RGB2GRAY);
  g.convertTo(g8, CV_8U, 255);
  return g8;
}

Correspondence exactCorrespondence(cv::Size size, double dx, double dy) {
  Correspondence c{cv::Mat(size, CV_32F), cv::Mat(size, CV_32F), cv::Mat(size, CV_8U)};
  for (int y = 0; y < size.height; ++y)
    for (int x = 0; x < size.width; ++x) {
      const float px = float(x - dx), py = float(y - dy);
      c.mapX.at<float>(y, x) = px;
      c.mapY.at<float>(y, x) = py;
      c.valid.at<uint8_t>(y, x) = px >= 0 && py >= 0 && px <= size.width - 1 && py <= size.height - 1;
    }
  return c;
}

Correspondence estimatedCorrespondence(cv::DISOpticalFlow& dis, const cv::Mat& previous, const cv::Mat& current) {
  cv::Mat backward, forward;  // current → previous, previous → current
  dis.calc(current, previous, backward);
  dis.calc(previous, current, forward);
  const cv::Size size = current.size();
  Correspondence c{cv::Mat(size, CV_32F), cv::Mat(size, CV_32F), cv::Mat(size, CV_8U)};
  for (int y = 0; y < size.height; ++y)
    for (int x = 0; x < size.width; ++x) {
      const cv::Vec2f b = backward.at<cv::Vec2f>(y, x);
      c.mapX.at<float>(y, x) = x + b[0];
      c.mapY.at<float>(y, x) = y + b[1];
    }
  cv::Mat forwardAtTarget;
  cv::remap(forward, forwardAtTarget, c.mapX, c.mapY, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  std::vector<cv::Mat> parts;
  cv::split(backward, parts);
  cv::Mat gxU, gyU, gxV, gyV;
  cv::Sobel(parts[0], gxU, CV_32F, 1, 0, 1);
  cv::Sobel(parts[0], gyU, CV_32F, 0, 1, 1);
  cv::Sobel(parts[1], gxV, CV_32F, 1, 0, 1);
  cv::Sobel(parts[1], gyV, CV_32F, 0, 1, 1);
  for (int y = 0; y < size.height; ++y)
    for (int x = 0; x < size.width; ++x) {
      const cv::Vec2f b = backward.at<cv::Vec2f>(y, x), f = forwardAtTarget.at<cv::Vec2f>(y, x);
      const float bb = b.dot(b), ff = f.dot(f);
      const cv::Vec2f sum = b + f;
      // Lai et al.: forward-backward consistency (occlusions) and flow gradient (motion boundaries).
      const bool consistent = sum.dot(sum) < 0.01f * (bb + ff) + 0.5f;
      const float gradient = gxU.at<float>(y, x) * gxU.at<float>(y, x) + gyU.at<float>(y, x) * gyU.at<float>(y, x) +
                             gxV.at<float>(y, x) * gxV.at<float>(y, x) + gyV.at<float>(y, x) * gyV.at<float>(y, x);
      const bool boundary = gradient > 0.01f * bb + 0.002f;
      const float px = c.mapX.at<float>(y, x), py = c.mapY.at<float>(y, x);
      const bool inside = px >= 0 && py >= 0 && px <= size.width - 1 && py <= size.height - 1;
      c.valid.at<uint8_t>(y, x) = consistent && !boundary && inside;
    }
  return c;
}

Correspondence scaledCorrespondence(cv::DISOpticalFlow& dis, const cv::Mat& previous, const cv::Mat& current,
                                    double scale) {
  if (scale >= 1) return estimatedCorrespondence(dis, previous, current);
  cv::Mat smallPrevious, smallCurrent;
  cv::resize(previous, smallPrevious, cv::Size(), scale, scale, cv::INTER_AREA);
  cv::resize(current, smallCurrent, cv::Size(), scale, scale, cv::INTER_AREA);
  const Correspondence small = estimatedCorrespondence(dis, smallPrevious, smallCurrent);
  const cv::Size size = current.size();
  Correspondence c;
  // Absolute coordinates scale with the image: x_full = (x_small + 0.5) / s - 0.5.
  cv::resize(small.mapX, c.mapX, size, 0, 0, cv::INTER_LINEAR);
  cv::resize(small.mapY, c.mapY, size, 0, 0, cv::INTER_LINEAR);
  const double sx = double(size.width) / small.mapX.cols, sy = double(size.height) / small.mapX.rows;
  c.mapX = (c.mapX + 0.5) * sx - 0.5;
  c.mapY = (c.mapY + 0.5) * sy - 0.5;
  cv::resize(small.valid, c.valid, size, 0, 0, cv::INTER_NEAREST);
  return c;
}

}  // namespace stylize
