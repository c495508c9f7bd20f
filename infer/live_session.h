// stylize live: a camera (or any video, looping) stylized in a window and/or sent to outputs (a virtual
// camera, a stream, a recording). Three threads: capture keeps only the newest frame, inference always takes
// the newest one, the window thread shows the newest result and hands it to the outputs (each with its own
// sending thread); a slow model drops frames instead of building up lag.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "infer/audio_capture.h"
#include "infer/live_output.h"
#include "infer/preview_window.h"
#include "infer/stabilizer.h"
#include "infer/stylizer.h"
#include "infer/video_decoder.h"

namespace stylize {

enum class LiveView { kStylized, kOriginal, kSideBySide };

struct LiveOptions {
  std::string input;      // file, stream URL or camera device
  ReadOptions read;       // for cameras: format "v4l2", video_size, framerate
  bool camera = false;    // a device: paced by itself, reopened when unplugged
  bool loop = false;      // files: start over at the end
  bool realTime = true;   // files: play at their frame rate (false: as fast as they decode)
  double captureFps = 0;  // files: deliver this many frames per second instead (a webcam's 30 in benchmarks)
  std::vector<std::filesystem::path> models;
  torch::Device device = torch::kCPU;
  Precision precision = Precision::kFloat32;
  StylizeOptions stylize;
  int size = 0;                               // inference long side (0 = as captured)
  double targetFps = 0;                       // lower the inference size automatically to hold this rate (0 = off)
  int64_t frames = 0;                         // stop after this many stylized frames (0 = until quit)
  int64_t screenshotAt = 0;                   // save the screen when this frame shows (1-based; 0 = never)
  std::filesystem::path screenshotPath;       // for screenshotAt
  std::filesystem::path screenshotDir = ".";  // for the `s` key
  bool overlay = true;
  // FrameStabilizer strength (0 = off) and gate; not given: each model's recommendation (chooseStabilize)
  std::optional<double> stabilize, stabilizeGate;
  // Where else the screen goes (virtual camera, stream, recording): size and rate default to the source's.
  std::vector<LiveOutputOptions> outputs;
  bool window = true;  // false: outputs only, no SDL window (and no keys)
  // Sound for the stream and file outputs: "pulse:NAME", "alsa:NAME", or a file or URL (see AudioCapture).
  std::string audio;
};

struct LiveStats {
  int64_t frames = 0;      // stylized frames shown
  double fps = 0;          // shown per second, over the last second or so
  double latencyMs = 0;    // capture → on screen, recent mean
  double inferenceMs = 0;  // of that, converting + stylizing + converting back, recent mean
  int inferenceWidth = 0, inferenceHeight = 0;
  size_t model = 0;
  LiveView view = LiveView::kStylized;
  double strength = 1;
  std::string status;                                            // e.g. "camera lost, retrying"
  std::vector<std::pair<std::string, LiveOutputStats>> outputs;  // by --output target
};

class LiveSession {
 public:
  // Loads every model, opens the source (a clear error when missing or busy) and the window.
  explicit LiveSession(LiveOptions options);
  ~LiveSession();
  LiveSession(const LiveSession&) = delete;
  LiveSession& operator=(const LiveSession&) = delete;

  // One turn of the window loop: handles keys, shows the newest result. false when finished (q/Esc,
  // window closed, --frames reached, or a non-looping file ended).
  bool step();
  // step() until finished or `stop` is set.
  void run(const std::atomic<bool>* stop = nullptr);
  // Finishes every output (a recording appears at its name); throws the first output's error. The
  // destructor does the same but swallows errors.
  void finishOutputs();

  LiveStats stats() const;
  // The picture on screen now (view and overlay included), [3, H, W] in [0, 1].
  torch::Tensor screen() const;
  void saveScreenshot(const std::filesystem::path& path) const;
  const std::string& modelName(size_t index) const { return names_.at(index); }
  const nlohmann::json& modelInfo(size_t index) const { return stylizers_.at(index)->info(); }

 private:
  struct Captured {
    av::FramePtr frame;
    std::chrono::steady_clock::time_point at;
    int64_t sequence = 0;
  };
  struct Result {
    torch::Tensor source, stylized;  // [H, W, 3] uint8 on the CPU at capture size
    std::chrono::steady_clock::time_point capturedAt;
    int64_t sequence = 0;
    double inferenceMs = 0;
    int width = 0, height = 0;
  };
  void captureLoop();
  void inferenceLoop();
  void handleKey(int key);
  void compose(const Result& result);

  LiveOptions options_;
  std::vector<std::unique_ptr<Stylizer>> stylizers_;
  std::vector<std::string> names_;
  std::unique_ptr<VideoDecoder> source_;
  std::unique_ptr<PreviewWindow> window_;
  std::unique_ptr<AudioCapture> audio_;
  std::vector<std::unique_ptr<LiveOutput>> outputs_;

  mutable std::mutex mutex_;
  std::condition_variable captured_, stylized_;
  Captured latest_;
  Result result_;  // newest from the inference thread
  Result shown_;   // on screen (window thread only)
  bool sourceEnded_ = false, quitting_ = false;
  std::string status_;
  // Settings the keys change, read by the inference thread under mutex_.
  size_t model_ = 0;
  double strength_ = 1;
  double scale_ = 1;  // of the inference size, adjusted by --target-fps

  LiveView view_ = LiveView::kStylized;
  int64_t shownSequence_ = 0, frames_ = 0;
  torch::Tensor screen_;  // [H, W, 3] uint8
  std::vector<std::chrono::steady_clock::time_point> shownAt_;
  double latencyMs_ = 0, inferenceMs_ = 0;
  std::chrono::steady_clock::time_point presentedAt_;
  int inferenceWidth_ = 0, inferenceHeight_ = 0;
  int screenshots_ = 0;
  bool finished_ = false;
  std::thread capture_, inference_;
};

}  // namespace stylize
