// Reads any video FFmpeg can (files, image sequences, streams, V4L2 cameras) as RGB frames, and hands
// back the packets of the other streams untouched so the encoder can copy them bit for bit.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "infer/ffmpeg.h"
#include "infer/hw_decode.h"

namespace stylize {

struct VideoInfo {
  int width = 0, height = 0;
  AVRational timeBase{0, 1};      // of the video stream: frame timestamps are in it
  AVRational frameRate{0, 1};     // average; 0/1 when unknown
  AVRational sampleAspect{0, 1};  // 0/1 when unknown (square)
  double rotation = 0;            // display matrix, degrees counter-clockwise
  double duration = 0;            // seconds after --start/--duration, 0 when unknown
  int64_t frames = 0;             // estimate, 0 when unknown
  std::string codec;
  bool hardwareDecoding = false;  // NVDEC: frames arrive in GPU memory
  std::string decodeNote;         // why CUDA decoding was asked for and not used; empty otherwise
};

struct ReadOptions {
  std::string format;                                               // demuxer ("v4l2"); empty = probe
  std::vector<std::pair<std::string, std::string>> demuxerOptions;  // e.g. video_size, framerate
  double start = 0;           // seconds; timestamps are shifted so that --start (or the file's own start) is 0
  double duration = 0;        // seconds, 0 = to the end
  bool lowDelay = false;      // live: no frame-threading latency
  int width = 0, height = 0;  // deliver frames scaled to this size (0 = as decoded), e.g. a camera's 640x480
  // Deliver 4:2:0 frames as decoded (YUV420P, NV12, 10-bit; see av::framePlanes) for a conversion on the
  // model's device; other formats, and scaled reading, still come as RGB24.
  bool keepYuv = false;
  // NVDEC: decoded frames stay on the GPU (with keepYuv; else they are copied back for swscale). Falls back
  // to software decoding, with VideoInfo::decodeNote saying why when CUDA was asked for explicitly.
  HwAccel hwaccel = HwAccel::kNone;
  int cudaDevice = 0;
  // Read these bytes instead of opening the url (which then only names the input in messages): for
  // fuzzing the demuxers and decoders without files. Must outlive the decoder.
  const std::string* memory = nullptr;
};

class VideoDecoder {
 public:
  explicit VideoDecoder(const std::string& url, const ReadOptions& options = {});

  const VideoInfo& info() const { return info_; }
  const AVFormatContext* format() const { return format_.get(); }
  int videoStream() const { return stream_; }
  const std::string& url() const { return url_; }

  // The next item in file order: a decoded frame as packed RGB24 at info() size with `pts` in
  // info().timeBase, or a packet of another stream with its stream_index. false at the end.
  struct Item {
    av::FramePtr frame;
    av::PacketPtr packet;
  };
  bool next(Item& item);

  // Back to --start, for looping sources. false when the input cannot seek (streams, cameras).
  bool rewind();

  int64_t framesDecoded() const { return framesDecoded_; }
  int64_t skippedPackets() const { return skippedPackets_; }  // corrupt packets the decoder rejected
  const std::string& endError() const { return endError_; }   // why reading stopped, when not a clean end

 private:
  av::FramePtr toRgb(const AVFrame& frame);
  // Every packet's timestamps on one clock that starts at 0 at --start and never jumps (retime), then the
  // --start/--duration window (inWindow, in microseconds of that clock).
  void retime(AVPacket& packet);
  bool inWindow(int64_t us) const;
  void seekToKeyframeBefore(int64_t fileStartUs);
  int64_t windowEndUs() const;
  bool otherStreamsPastEnd() const;
  // How far past --duration's end reading may go for other streams' packets: well beyond FFmpeg muxers'
  // default interleaving span (10 s); only packets are read, nothing is decoded.
  static constexpr int64_t kInterleaveSlackUs = 30'000'000;

  std::string url_;
  ReadOptions options_;
  // ReadOptions::memory as an AVIOContext; declared before format_ so that it is freed after it.
  struct MemoryReader {
    const std::string* bytes = nullptr;
    int64_t position = 0;
  };
  MemoryReader memory_;
  av::IOContextPtr memoryIo_;
  av::InputFormatPtr format_;
  av::CodecContextPtr codec_;
  av::SwsPtr sws_;
  av::FramePtr decoded_;
  av::PacketPtr packet_;
  VideoInfo info_;
  int stream_ = -1;
  // The container's start time plus --start, in AV_TIME_BASE units: time 0 of every output timestamp, as
  // `ffmpeg -i in.ts -c copy out.mp4` starts at 0 whatever the source's first timestamp (MPEG-TS: 1.4 s).
  int64_t originUs_ = 0;
  // Per stream, in µs: the shift that undoes the discontinuities so far, the last dts after it, and the
  // last step between two dts.
  struct Clock {
    int64_t shiftUs = 0, lastUs = AV_NOPTS_VALUE, stepUs = 0;
  };
  std::vector<Clock> clocks_;
  bool flushing_ = false, finished_ = false;
  // Past --duration's end on the video stream, reading goes on for the other streams: a file may store
  // audio inside the window seconds after the video that ends it. Done when each has passed the end.
  bool videoEnded_ = false;
  std::vector<bool> pastEnd_;  // per stream
  int64_t framesDecoded_ = 0, skippedPackets_ = 0;
  std::string endError_;
  // The swscale context is rebuilt when the decoder's output format changes mid-stream.
  int swsWidth_ = 0, swsHeight_ = 0, swsFormat_ = -1, swsSpace_ = -1, swsRange_ = -1;
};

}  // namespace stylize
