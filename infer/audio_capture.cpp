#include "infer/audio_capture.h"

extern "C" {
#include <libavdevice/avdevice.h>
}

#include "data/error.h"

namespace stylize {

using Clock = std::chrono::steady_clock;

AudioCapture::AudioCapture(const std::string& spec) : spec_(spec) {
  avdevice_register_all();
  // "pulse:NAME" and "alsa:NAME" are sound devices; anything else is a file or URL.
  std::string url = spec;
  const AVInputFormat* demuxer = nullptr;
  for (const char* kind : {"pulse", "alsa"}) {
    const std::string prefix = std::string(kind) + ":";
    if (spec.rfind(prefix, 0) == 0) {
      demuxer = av_find_input_format(kind);
      if (!demuxer) throw Error("--audio " + spec + ": this FFmpeg has no " + kind + " input (libavdevice)");
      url = spec.substr(prefix.size());
      device_ = true;
    }
  }
  // A stalled network source must not hold the reading thread (and the destructor that joins it) forever.
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) throw Error("out of memory opening --audio " + spec);
  raw->interrupt_callback.callback = [](void* self) {
    return static_cast<AudioCapture*>(self)->stopping_.load() ? 1 : 0;
  };
  raw->interrupt_callback.opaque = this;
  const int opened = avformat_open_input(&raw, url.c_str(), demuxer, nullptr);
  if (opened < 0) throw Error("--audio " + spec + ": cannot open: " + av::errorString(opened));
  format_.reset(raw);
  if (const int r = avformat_find_stream_info(format_.get(), nullptr); r < 0)
    throw Error("--audio " + spec + ": cannot read the stream layout: " + av::errorString(r));
  stream_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (stream_ < 0) throw Error("--audio " + spec + ": has no sound");
  for (unsigned i = 0; i < format_->nb_streams; ++i)
    if (static_cast<int>(i) != stream_) format_->streams[i]->discard = AVDISCARD_ALL;
}

AudioCapture::~AudioCapture() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void AudioCapture::start(Sink sink) {
  sink_ = std::move(sink);
  thread_ = std::thread([this] { readLoop(); });
}

void AudioCapture::readLoop() {
  const AVRational timeBase = format_->streams[stream_]->time_base;
  av::PacketPtr packet = av::allocPacket();
  Clock::time_point start{};
  int64_t firstPts = AV_NOPTS_VALUE;
  while (!stopping_) {
    if (av_read_frame(format_.get(), packet.get()) < 0) return;  // the end, or the device went away
    if (packet->stream_index != stream_) {
      av_packet_unref(packet.get());
      continue;
    }
    Clock::time_point capturedAt = Clock::now();
    if (device_) {
      // A device hands over a packet when its last sample is in: the first was captured a packet earlier.
      capturedAt -= std::chrono::microseconds(av_rescale_q(packet->duration, timeBase, {1, 1000000}));
    } else if (packet->pts != AV_NOPTS_VALUE) {
      // A file plays in real time: each packet when its time comes, stamped with that time.
      if (firstPts == AV_NOPTS_VALUE) firstPts = packet->pts, start = capturedAt;
      capturedAt = start + std::chrono::microseconds(av_rescale_q(packet->pts - firstPts, timeBase, {1, 1000000}));
      while (!stopping_ && Clock::now() < capturedAt)
        std::this_thread::sleep_for(
            std::min<Clock::duration>(capturedAt - Clock::now(), std::chrono::milliseconds(20)));
    }
    if (!stopping_) sink_(*packet, capturedAt);
    av_packet_unref(packet.get());
  }
}

}  // namespace stylize
