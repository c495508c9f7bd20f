#include "infer/flicker.h"

#include <opencv2/imgproc.hpp>

#include "data/error.h"
#include "infer/optical_flow.h"
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

// Squared RGB differences between `current` and `previous` warped by `c` over the valid pixels, apart for
// the pixels that stay put (the correspondence moves them under FlickerOptions::kStillMotion pixels).
struct MaskedSums {
  double all = 0, still = 0;
  int64_t count = 0, stillCount = 0;
  double mean() const { return count ? all / (3.0 * count) : 0; }
};

MaskedSums maskedError(const cv::Mat& previous, const cv::Mat& current, const Correspondence& c) {
  cv::Mat warped;
  cv::remap(previous, warped, c.mapX, c.mapY, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  constexpr float kStill2 = float(FlickerOptions::kStillMotion * FlickerOptions::kStillMotion);
  MaskedSums s;
  for (int y = 0; y < current.rows; ++y)
    for (int x = 0; x < current.cols; ++x) {
      if (!c.valid.at<uint8_t>(y, x)) continue;
      const cv::Vec3f d = current.at<cv::Vec3f>(y, x) - warped.at<cv::Vec3f>(y, x);
      const double e = d.dot(d);
      s.all += e;
      ++s.count;
      const float mx = c.mapX.at<float>(y, x) - x, my = c.mapY.at<float>(y, x) - y;
      if (mx * mx + my * my < kStill2) {
        s.still += e;
        ++s.stillCount;
      }
    }
  return s;
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
  cv::Mat previousGray = grayOf(previousIn);
  FlickerResult result;
  for (int64_t frame = 1; options.maxFrames == 0 || frame < options.maxFrames; ++frame) {
    cv::Mat currentIn = nextFrame(in), currentOut = nextFrame(out);
    if (currentIn.empty() || currentOut.empty()) break;
    currentOut = fit(currentOut);
    const cv::Mat currentGray = grayOf(currentIn);
    const Correspondence c = options.exactMotion ? exactCorrespondence(currentIn.size(), options.exactMotion->first,
                                                                       options.exactMotion->second)
                                                 : estimatedCorrespondence(*dis, previousGray, currentGray);
    FramePairError pair;
    pair.frame = frame;
    const MaskedSums input = maskedError(previousIn, currentIn, c), output = maskedError(previousOut, currentOut, c);
    pair.inputError = input.mean();
    pair.outputError = output.mean();
    pair.validFraction = double(output.count) / currentIn.total();
    pair.outputStill = output.still;
    pair.outputMoving = output.all - output.still;
    pair.stillCount = output.stillCount;
    pair.movingCount = output.count - output.stillCount;
    pair.cut = options.skipCuts && (pair.validFraction < FlickerOptions::kCutValidFraction ||
                                    pair.inputError > FlickerOptions::kCutInputError);
    result.perPair.push_back(pair);
    previousIn = currentIn;
    previousOut = currentOut;
    previousGray = currentGray;
  }
  FramePairError split;  // the counted pairs' still/moving sums together
  for (const FramePairError& pair : result.perPair) {
    if (pair.cut) {
      ++result.cuts;
      continue;
    }
    result.inputError += pair.inputError;
    result.outputError += pair.outputError;
    result.validFraction += pair.validFraction;
    split.outputStill += pair.outputStill;
    split.outputMoving += pair.outputMoving;
    split.stillCount += pair.stillCount;
    split.movingCount += pair.movingCount;
    ++result.pairs;
  }
  if (result.perPair.empty()) throw Error(input + ": needs at least two frames to measure flicker");
  if (result.pairs == 0)
    throw Error(input + ": every frame pair is a shot change; nothing continuous to measure flicker on");
  result.inputError /= result.pairs;
  result.outputError /= result.pairs;
  result.validFraction /= result.pairs;
  result.stillFraction = split.stillFraction();
  result.outputStillError = split.outputStillError();
  result.outputMovingError = split.outputMovingError();
  return result;
}

}  // namespace stylize
