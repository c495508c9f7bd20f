// Ownership of libav* objects: every allocation lives in a std::unique_ptr with its free function, so
// no error path leaks (the pattern of FFmpeg's doc/examples/transcode.c, without its goto cleanup).
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/time.h>
#include <libswscale/swscale.h>
}

#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "infer/yuv.h"

namespace stylize::av {

struct InputFormatDeleter {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct OutputFormatDeleter {
  void operator()(AVFormatContext* c) const {
    if (c && c->pb && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct IOContextDeleter {  // a custom AVIOContext: its buffer too (libav may have replaced it)
  void operator()(AVIOContext* io) const {
    if (io) av_freep(&io->buffer);
    avio_context_free(&io);
  }
};

using InputFormatPtr = std::unique_ptr<AVFormatContext, InputFormatDeleter>;
using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using IOContextPtr = std::unique_ptr<AVIOContext, IOContextDeleter>;

// A colour tag as a stream gave it. A corrupt stream can carry any number there, and loading a value outside
// the enum through the enum type is undefined behaviour (the video fuzz target found a colour space of 243):
// the bits are read as an int, and anything outside [0, count) becomes `fallback` (unspecified).
template <typename Enum>
Enum checkedTag(const Enum& tag, int count, Enum fallback) {
  static_assert(sizeof(Enum) == sizeof(int), "libav's colour enums are ints");
  int value = 0;
  std::memcpy(&value, &tag, sizeof value);
  return value >= 0 && value < count ? static_cast<Enum>(value) : fallback;
}
inline AVColorSpace colorSpaceOf(const AVColorSpace& t) { return checkedTag(t, AVCOL_SPC_NB, AVCOL_SPC_UNSPECIFIED); }
inline AVColorRange colorRangeOf(const AVColorRange& t) {
  return checkedTag(t, AVCOL_RANGE_NB, AVCOL_RANGE_UNSPECIFIED);
}
inline AVColorPrimaries colorPrimariesOf(const AVColorPrimaries& t) {
  return checkedTag(t, AVCOL_PRI_NB, AVCOL_PRI_UNSPECIFIED);
}
inline AVColorTransferCharacteristic colorTransferOf(const AVColorTransferCharacteristic& t) {
  return checkedTag(t, AVCOL_TRC_NB, AVCOL_TRC_UNSPECIFIED);
}

// Allocation that throws instead of returning null.
FramePtr allocFrame();
PacketPtr allocPacket();
// A frame that owns a buffer of `format` at width×height.
FramePtr allocFrame(AVPixelFormat format, int width, int height);

// av_strerror as a string.
std::string errorString(int code);
// Throws Error("<what>: <libav message>") when code < 0; returns code otherwise.
int check(int code, const std::string& what);

// libav's log goes through our warnings only at AV_LOG_ERROR and above: its per-packet chatter would
// break the progress bar.
void quietLogs();

// The display matrix rotation of a stream in degrees counter-clockwise (0 when absent), and setting it
// on an output stream; the API moved between FFmpeg 5 and 6.1.
double streamRotation(const AVStream* stream);
void copyDisplayMatrix(const AVStream* from, AVStream* to);
void setStreamRotation(AVStream* stream, double degrees);

// A frame's display duration in its time base (0 when unknown): the field was renamed in FFmpeg 6.
inline int64_t frameDuration(const AVFrame& frame) {
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 30, 100)
  return frame.duration;
#else
  return frame.pkt_duration;
#endif
}
inline void setFrameDuration(AVFrame& frame, int64_t duration) {
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 30, 100)
  frame.duration = duration;
#else
  frame.pkt_duration = duration;
#endif
}

// The YUV matrix swscale should use for a frame: its tag, else BT.709 for HD and BT.601 below, as players do.
int swsColorspace(AVColorSpace space, int height);

// A decoded 4:2:0 frame's planes as tensors over the frame's own memory (no copy: the frame must outlive
// them), for yuvToRgb on any device. YUV420P/YUVJ420P, NV12, YUV420P10 and P010 (the NVDEC formats and
// what software decoders give); std::nullopt for any other format.
// CUDA frames (NVDEC, see hw_decode.h) give CUDA tensors on device `cudaDevice`.
std::optional<YuvPlanes> framePlanes(const AVFrame& frame, int cudaDevice = 0);
// The frame's matrix and range as tagged (untagged: BT.709 for HD, BT.601 below, as players assume).
YuvFormat frameYuvFormat(const AVFrame& frame);
// Planar 4:2:0 tensors (any device) → a new YUV420P or YUV420P10 frame of that size.
FramePtr planesToFrame(const YuvPlanes& planes, int bits);

}  // namespace stylize::av
