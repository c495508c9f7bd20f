// Writes RGB frames as a video with the source's timing, rotation, aspect ratio and metadata, and copies
// the source's audio and subtitle packets without re-encoding. The file appears at its name only when
// finish() completes; until then it lives under a temporary name that the destructor removes.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "infer/audio_transcoder.h"
#include "infer/ffmpeg.h"
#include "infer/video_decoder.h"

namespace stylize {

struct WriteOptions {
  std::string codec;   // empty: libx264 for mp4/mov/mkv, libvpx-vp9 for webm, else the container's default
  int crf = -1;        // -1: 18 for x264, 32 for VP9 (visually near-lossless / good)
  std::string preset;  // x264 preset; empty: medium
  std::string pixFmt;  // empty: yuv420p, what every player decodes
};

class VideoEncoder {
 public:
  VideoEncoder(const std::filesystem::path& path, const VideoDecoder& source, const WriteOptions& options = {});
  ~VideoEncoder();
  VideoEncoder(const VideoEncoder&) = delete;
  VideoEncoder& operator=(const VideoEncoder&) = delete;

  // An RGB24 frame at the source size with pts in the source's video time base. Odd sizes lose the last
  // row/column when the pixel format subsamples chroma (width() and height() say what is encoded).
  // Or a frame already in the encoder's pixel format at width()×height() (see yuvFormat()).
  void write(const AVFrame& rgb);
  // The YUV the encoder takes, when it is 8- or 10-bit 4:2:0: a frame made with av::planesToFrame from
  // rgbToYuv(image, *yuvFormat()) goes in without swscale. std::nullopt for other pixel formats.
  std::optional<YuvFormat> yuvFormat() const;
  // A packet the decoder returned; streams that are not copied are ignored.
  void copy(AVPacket& packet);
  // Flushes the encoder, writes the trailer and renames the file into place.
  void finish();

  int width() const { return codec_->width; }
  int height() const { return codec_->height; }
  std::string codecName() const { return codec_->codec->name; }
  int64_t framesWritten() const { return framesWritten_; }
  int64_t packetsCopied() const { return packetsCopied_; }
  // Streams of the source that the container cannot hold, e.g. "stream 2 (subtitle mov_text)".
  const std::vector<std::string>& droppedStreams() const { return dropped_; }
  // Audio streams re-encoded because the container cannot hold their codec, e.g. "stream 1 (aac → libopus)".
  const std::vector<std::string>& transcodedStreams() const { return transcodedNames_; }

 private:
  void drain(bool flush);

  std::filesystem::path path_, temporary_;
  av::OutputFormatPtr format_;
  av::CodecContextPtr codec_;
  av::SwsPtr sws_;
  av::FramePtr converted_;
  av::PacketPtr packet_;
  AVRational sourceTimeBase_;
  std::map<int64_t, int64_t> durations_;  // frame pts → its source duration, until its packet comes out
  std::vector<int> streamMap_;            // source stream → output stream, -1 when dropped
  std::vector<AVRational> sourceTimeBases_;
  std::vector<std::string> dropped_, transcodedNames_;
  std::map<int, std::unique_ptr<AudioTranscoder>> transcoders_;  // by source stream
  int videoOut_ = 0;
  int64_t lastPts_ = AV_NOPTS_VALUE, frameTicks_ = 1;
  int64_t framesWritten_ = 0, packetsCopied_ = 0;
  bool finished_ = false;
};

}  // namespace stylize
