#include "infer/flicker.h"

#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "data/error.h"
#include "infer/video_decoder.h"

namespace stylize {

namespace {

// The next decoded frame as an RGB float image in [0, 1], or empty at the end.
cv::Mat nextFrame(VideoDecoder& decoder) {
  VideoDecoder::Item item;
  while (decoder.next(item)) {
    if (!item.frame) continue;
    cv::Mat rgb(item.frame->height, item.frame->width, CV_8UC3, item.frame->data[0], item.frame->linesize[0]);
    cv::Mat out;
    rgb.convertTo(out, CV_32FC3, 1.0 / 255);
    return out;
  }
  return {};
}

cv::Mat gray(const cv::Mat& rgb) {
  cv::Mat g, g8;
  cv::cvtColor(rgb, g, cv::COLOR_RGB2GRAY);
  g.convertTo(g8, CV_8U, 255);
  return g8;
}

// Where each pixel of frame t was in frame t-1 (absolute coordinates for cv::remap), and the pixels whose
// correspondence is trustworthy.
struct Correspondence {
  cv::Mat mapX, mapY;  // CV_32F
  cv::Mat valid;       // CV_8U, 1 = use
};

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

// Mean squared RGB difference between `current` and `previous` warped by `c`, over the valid pixels.
double maskedError(const cv::Mat& previous, const cv::Mat& current, const Correspondence& c, int64_t* count) {
  cv::Mat warped;
  cv::remap(previous, warped, c.mapX, c.mapY, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  double sum = 0;
  int64_t n = 0;
  for (int y = 0; y < current.rows; ++y)
    for (int x = 0; x < current.cols; ++x) {
      if (!c.valid.at<uint8_t>(y, x)) continue;
      const cv::Vec3f d = current.at<cv::Vec3f>(y, x) - warped.at<cv::Vec3f>(y, x);
      sum += d.dot(d);
      ++n;
    }
  *count = n;
  return n ? sum / (3.0 * n) : 0;
}

}  // namespace

FlickerResult warpingError(const std::string& input, const std::string& stylized, const FlickerOptions& options) {
  VideoDecoder in(input), out(stylized);
  cv::Ptr<cv::DISOpticalFlow> dis = cv::DISOpticalFlow::create(cv::DISOpticalFlow::PRESET_MEDIUM);
  cv::Mat previousIn = nextFrame(in), previousOut = nextFrame(out);
  if (previousIn.empty()) throw Error(input + ": no video frames");
  if (previousOut.empty()) throw Error(stylized + ": no video frames");
  auto fit = [&](cv::Mat frame) {  // e.g. an odd-sized input whose stylized video lost a row
    if (frame.size() != previousIn.size()) cv::resize(frame, frame, previousIn.size(), 0, 0, cv::INTER_LINEAR);
    return frame;
  };
  previousOut = fit(previousOut);
  cv::Mat previousGray = gray(previousIn);
  FlickerResult result;
  double validSum = 0;
  for (int64_t frame = 1; options.maxFrames == 0 || frame < options.maxFrames; ++frame) {
    cv::Mat currentIn = nextFrame(in), currentOut = nextFrame(out);
    if (currentIn.empty() || currentOut.empty()) break;
    currentOut = fit(currentOut);
    const cv::Mat currentGray = gray(currentIn);
    const Correspondence c = options.exactMotion ? exactCorrespondence(currentIn.size(), options.exactMotion->first,
                                                                       options.exactMotion->second)
                                                 : estimatedCorrespondence(*dis, previousGray, currentGray);
    int64_t count = 0;
    result.inputError += maskedError(previousIn, currentIn, c, &count);
    result.outputError += maskedError(previousOut, currentOut, c, &count);
    validSum += double(count) / currentIn.total();
    ++result.pairs;
    previousIn = currentIn;
    previousOut = currentOut;
    previousGray = currentGray;
  }
  if (result.pairs == 0) throw Error(input + ": needs at least two frames to measure flicker");
  result.inputError /= result.pairs;
  result.outputError /= result.pairs;
  result.validFraction = validSum / result.pairs;
  return result;
}

}  // namespace stylize
