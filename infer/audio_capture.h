// stylize live --audio: the sound for stream and file outputs, read on its own thread. A microphone through
// libavdevice ("pulse:default", "alsa:hw:0"), or any file or stream with sound, which is played in real
// time as --input is. Every packet goes to a sink with the moment its first sample was captured, the clock
// the outputs place it by.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "infer/ffmpeg.h"

namespace stylize {

class AudioCapture {
 public:
  using Sink = std::function<void(const AVPacket& packet, std::chrono::steady_clock::time_point capturedAt)>;

  // Opens the source and finds its sound; a one-line Error when it is missing or has none.
  explicit AudioCapture(const std::string& spec);
  ~AudioCapture();
  AudioCapture(const AudioCapture&) = delete;
  AudioCapture& operator=(const AudioCapture&) = delete;

  const AVStream& stream() const { return *format_->streams[stream_]; }
  // Starts reading; the sink is called on the reading thread until the source ends or the capture is destroyed.
  void start(Sink sink);

 private:
  void readLoop();

  std::string spec_;
  bool device_ = false;
  av::InputFormatPtr format_;
  int stream_ = -1;
  Sink sink_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace stylize
