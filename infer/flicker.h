// Temporal stability as the warping error of Lai et al. (ECCV 2018): optical flow between consecutive
// input frames warps the previous output onto the current one; where the flow is trustworthy (no occlusion,
// no motion boundary) a stable video differs little from its warped predecessor.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace stylize {

struct FlickerOptions {
  int64_t maxFrames = 0;  // 0 = all
  // The exact motion of the content in pixels per frame (synthetic pans), instead of estimated flow.
  std::optional<std::pair<double, double>> exactMotion;
  // Leave shot changes out of the means: a cut is not flicker, and the few pixels the mask keeps across one
  // measure nothing but the change of scene. A pair is a cut when the mask trusts under kCutValidFraction
  // of the frame or the input's own error is over kCutInputError (continuous shared clips stay under 0.0013).
  bool skipCuts = true;
  static constexpr double kCutValidFraction = 0.05, kCutInputError = 0.02;
  // A pixel the flow moves less than this (in pixels) is still: only noise, codec and light change it in the
  // input, so the stylized video's error there is its answer to noise, and the rest its answer to motion.
  static constexpr double kStillMotion = 0.5;
};

struct FramePairError {
  int64_t frame = 0;  // the later frame of the pair
  double inputError = 0, outputError = 0, validFraction = 0;
  bool cut = false;
  // The stylized error split by motion: sums of squared differences over the still and the moving valid
  // pixels (kept as sums, so that a clip's split weighs pairs by their pixels).
  double outputStill = 0, outputMoving = 0;
  int64_t stillCount = 0, movingCount = 0;
  double stillFraction() const { return fraction(stillCount, stillCount + movingCount); }
  double outputStillError() const { return fraction(outputStill, 3.0 * stillCount); }  // mean over RGB
  double outputMovingError() const { return fraction(outputMoving, 3.0 * movingCount); }

 private:
  static double fraction(double part, double whole) { return whole > 0 ? part / whole : 0; }
};

struct FlickerResult {
  int64_t pairs = 0;         // counted: all but the cuts
  int64_t cuts = 0;          // pairs left out as shot changes
  double inputError = 0;     // the input's own warping error: the floor (compression, lighting, flow errors)
  double outputError = 0;    // the stylized video's
  double validFraction = 0;  // of pixels inside the mask, mean over pairs
  // The stylized video's error split by motion (pixel-weighted over the counted pairs): on still pixels it
  // measures flicker from noise, on moving ones flicker from motion; stillFraction is of the valid pixels.
  double stillFraction = 0, outputStillError = 0, outputMovingError = 0;
  std::vector<FramePairError> perPair;
  double ratio() const { return inputError > 0 ? outputError / inputError : 0; }
};

// Both videos are decoded in step (the stylized one resampled to the input's size when they differ); the
// flow comes from the input (OpenCV DIS, preset medium). Errors are mean squared RGB differences in [0, 1].
FlickerResult warpingError(const std::string& input, const std::string& stylized, const FlickerOptions& options = {});

}  // namespace stylize
