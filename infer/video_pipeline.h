// stylize video: decode → stylize → encode on three threads joined by bounded queues, so decoding and
// encoding hide behind inference and memory stays flat however long the video is.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "infer/stylizer.h"
#include "infer/video_decoder.h"
#include "infer/video_encoder.h"

namespace stylize {

// Packed RGB24 frames, or 4:2:0 frames as decoded (av::framePlanes; their planes cross to the device and
// are converted there) ↔ [N, 3, H, W] float tensors in [0, 1] on `device`.
torch::Tensor framesToTensor(const std::vector<const AVFrame*>& frames, const torch::Device& device);
av::FramePtr tensorToFrame(const torch::Tensor& image);  // [3, H, W] → RGB24, any device
// [3, H, W] in [0, 1] → [H, W, 3] uint8 on the CPU, rounded: what tensorToFrame copies into the frame.
torch::Tensor imageToBytes(const torch::Tensor& image);

// [N, 3, H, W] to another size: antialiased bilinear (no aliasing shrinking 4K, smooth scaling back).
torch::Tensor resizeFrames(const torch::Tensor& images, int height, int width);

// The inference size for a frame: `size` sets the long side (0 = as is); `maxSize` only ever shrinks.
// Rounded to even numbers.
std::pair<int, int> processingSize(int width, int height, int size, int maxSize);

// Where YUV ↔ RGB happens: swscale on the CPU threads, or LibTorch on the model's device (only YUV bytes
// cross to a GPU and back: half of RGB's for 4:2:0). Auto: tensor on CUDA, swscale on the CPU, where it is
// faster.
enum class ColorConversion { kAuto, kSwscale, kTensor };

struct VideoJob {
  std::string input;
  std::filesystem::path output;
  ReadOptions read;
  WriteOptions write;
  StylizeOptions stylize;
  int size = 0, maxSize = 0;  // see processingSize(); the result is scaled back to the input size
  int batch = 1;              // frames per forward pass
  // FrameStabilizer strength (0 = off) and gate; not given: the model's recommendation (chooseStabilize)
  std::optional<double> stabilize, stabilizeGate;
  ColorConversion colorConversion = ColorConversion::kAuto;
};

struct VideoProgress {
  int64_t frames = 0, totalFrames = 0;  // total is an estimate, 0 when unknown
  double position = 0, duration = 0;    // seconds of video done and in all
};

struct VideoReport {
  int64_t frames = 0, skippedPackets = 0, copiedPackets = 0;
  std::vector<std::string> droppedStreams, transcodedStreams;
  bool interrupted = false;     // stopped early by `stop`; the file holds the frames so far
  double seconds = 0;           // wall time of the whole run
  double inferenceSeconds = 0;  // of which inside the model (the bound the pipeline tries to reach)
  int inputWidth = 0, inputHeight = 0;
  int width = 0, height = 0;  // as encoded
  int inferenceWidth = 0, inferenceHeight = 0;
  std::string codec, endError;
};

struct VideoCallbacks {
  std::function<void(const VideoInfo&)> started;  // once the input is open, before the first frame
  std::function<void(const VideoProgress&)> progress;
  // Sees every decoded frame and its stylized version on the calling thread (preview window, stills);
  // returning false stops the run.
  std::function<bool(const AVFrame& source, const AVFrame& stylized)> frame;
  // Set from a signal handler: finish the frames in flight and write a valid, shorter file.
  const std::atomic<bool>* stop = nullptr;
};

VideoReport stylizeVideo(Stylizer& stylizer, const VideoJob& job, const VideoCallbacks& callbacks = {});

}  // namespace stylize
