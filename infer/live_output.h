// stylize live --output: the live picture for other programs. A v4l2loopback device (a virtual webcam for
// video calls and OBS), a network stream (udp://, rtp://, tcp://, srt://, rtmp://) or a recording (.mkv,
// .mp4, .ts...). Every kind is one libavformat muxer fed by one encoder; only the v4l2 device differs, in
// its muxer and in sending raw YUYV/YUV420P frames instead of H.264.
// Each output runs on its own thread and sends at a steady rate the newest picture it was offered: the last
// one again when the model is slower than the output, skipping pictures when it is faster, so a slow model
// never stalls a call and the receiver sees a constant frame rate with increasing timestamps.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "infer/audio_transcoder.h"
#include "infer/ffmpeg.h"

namespace stylize {

struct LiveOutputOptions {
  std::string target;         // /dev/videoN, a URL, or a file
  std::string pixelFormat;    // v4l2 devices: yuyv422 (default; what browsers, Zoom/Meet and OBS take) or yuv420p
  int width = 0, height = 0;  // the picture is scaled to this (even) size
  double fps = 0;             // 0: 30
  // Sound for streams and files (ignored by a device: a virtual camera carries no sound): its packets come
  // through offerAudio(). Each picture is then sent `audioDelay` seconds after it was captured, and each
  // sound at the same distance from its capture, so that both stay together however long a picture took to
  // stylize (as long as that is under the delay).
  const AVStream* audio = nullptr;
  double audioDelay = 0.25;
};

struct LiveOutputStats {
  int64_t sent = 0;        // frames sent (repeats included)
  int64_t repeated = 0;    // of those, the previous picture again (the model was slower than the output)
  int64_t skipped = 0;     // pictures offered but replaced by a newer one before their turn
  int64_t late = 0;        // with sound: pictures that came later than their time to be sent
  std::string audioError;  // why the sound stopped, if it did
  double latencyMedianMs = 0, latencyP95Ms = 0;  // capture → handed to the muxer, new pictures only
};

class LiveOutput {
 public:
  // Opens the output; a one-line Error when the device is missing, not a V4L2 output, or busy, or the URL
  // or file cannot be opened.
  explicit LiveOutput(LiveOutputOptions options);
  // Stops sending; a recording is finished and renamed into place.
  ~LiveOutput();
  LiveOutput(const LiveOutput&) = delete;
  LiveOutput& operator=(const LiveOutput&) = delete;

  // The newest picture, [H, W, 3] uint8 RGB of any size (scaled to the output's), and when the camera took it.
  void offer(const torch::Tensor& rgb, std::chrono::steady_clock::time_point capturedAt);
  // A packet of options.audio's stream and when its first sample was captured (any thread).
  void offerAudio(const AVPacket& packet, std::chrono::steady_clock::time_point capturedAt);
  // Flushes the encoder and writes the trailer (a recording appears at its name only then); throws the
  // error that stopped the sending thread, if any.
  void finish();

  LiveOutputStats stats() const;
  const std::string& target() const { return options_.target; }

 private:
  void sendLoop();
  void writeAudio(const AVPacket& packet, std::chrono::steady_clock::time_point capturedAt);
  // Converts and encodes a new picture, or (nullptr) encodes the last one again.
  void send(const torch::Tensor* picture, int64_t pts);
  void drain(bool flush);

  LiveOutputOptions options_;
  std::filesystem::path temporary_;  // recordings: written here, renamed on finish()
  bool device_ = false, file_ = false;
  av::OutputFormatPtr format_;
  av::CodecContextPtr codec_;
  av::SwsPtr sws_;
  av::FramePtr frame_;
  av::PacketPtr packet_;
  int swsWidth_ = 0, swsHeight_ = 0;
  AVRational frameRate_{30, 1};

  std::unique_ptr<AudioTranscoder> audio_;
  std::mutex muxMutex_;  // the muxer and the audio transcoder: the sending and the sound threads both write
  std::deque<std::pair<av::PacketPtr, std::chrono::steady_clock::time_point>> audioBacklog_;  // before 1st picture
  bool audioClosed_ = false;

  struct Picture {
    torch::Tensor rgb;
    std::chrono::steady_clock::time_point capturedAt;
  };
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Picture> pictures_;  // offered, not yet sent (without sound: only the newest is kept)
  std::optional<std::chrono::steady_clock::time_point> origin_;  // capture time of the first picture sent
  std::chrono::steady_clock::time_point start_{};                // when the first picture was due (pts 0)
  int64_t lastPts_ = -1;
  int64_t offered_ = 0;
  bool stopping_ = false, finished_ = false;
  std::string error_;
  LiveOutputStats stats_;
  std::vector<double> latencies_;
  std::thread thread_;
};

}  // namespace stylize
