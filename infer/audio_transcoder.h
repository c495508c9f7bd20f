// Audio the output container cannot hold as it is (AAC into WebM) is re-encoded to the container's own
// codec instead of being lost: decode, resample, re-frame to the encoder's frame size, encode.
#pragma once

#include <string>

#include "infer/ffmpeg.h"

extern "C" {
#include <libavutil/audio_fifo.h>
#include <libswresample/swresample.h>
}

namespace stylize {

class AudioTranscoder {
 public:
  // Adds a stream to `output` (before its header is written); throws Error when this FFmpeg has no
  // decoder for the source or no encoder for the container's audio codec.
  AudioTranscoder(const AVStream& source, AVFormatContext& output);
  ~AudioTranscoder();
  AudioTranscoder(const AudioTranscoder&) = delete;
  AudioTranscoder& operator=(const AudioTranscoder&) = delete;

  void write(const AVPacket& packet);  // a packet of the source stream
  void finish();                       // flushes decoder, resampler and encoder

  std::string description() const;  // e.g. "aac → libopus"

 private:
  void decodeFrames();
  void encodeFrom(bool flush);
  void drain();

  AVFormatContext& output_;
  AVStream* stream_ = nullptr;
  AVRational sourceTimeBase_;
  av::CodecContextPtr decoder_, encoder_;
  SwrContext* resampler_ = nullptr;
  AVAudioFifo* fifo_ = nullptr;
  av::FramePtr decoded_;
  av::PacketPtr packet_;
  int64_t nextPts_ = AV_NOPTS_VALUE;         // in samples
  int64_t firstPacketPts_ = AV_NOPTS_VALUE;  // in the source's time base
  int64_t codecDelay_ = 0;                   // added to the encoder's timestamps (old Matroska muxers)
};

}  // namespace stylize
