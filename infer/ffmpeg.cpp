#include "infer/ffmpeg.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "data/error.h"
#include "infer/hw_decode.h"

namespace stylize::av {

FramePtr allocFrame() {
  FramePtr frame(av_frame_alloc());
  if (!frame) throw Error("out of memory allocating a video frame");
  return frame;
}

PacketPtr allocPacket() {
  PacketPtr packet(av_packet_alloc());
  if (!packet) throw Error("out of memory allocating a packet");
  return packet;
}

FramePtr allocFrame(AVPixelFormat format, int width, int height) {
  FramePtr frame = allocFrame();
  frame->format = format;
  frame->width = width;
  frame->height = height;
  check(av_frame_get_buffer(frame.get(), 0),
        "allocating a " + std::to_string(width) + "x" + std::to_string(height) + " frame");
  return frame;
}

std::string errorString(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, buf, sizeof buf);
  return buf;
}

int check(int code, const std::string& what) {
  if (code < 0) throw Error(what + ": " + errorString(code));
  return code;
}

void quietLogs() { av_log_set_level(AV_LOG_FATAL); }

// The stream-level side data API moved to codecpar in FFmpeg 6.1 (and the old one is gone in 7).
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 31, 100)
static uint8_t* newDisplayMatrix(AVStream* stream) {
  AVPacketSideData* sd =
      av_packet_side_data_new(&stream->codecpar->coded_side_data, &stream->codecpar->nb_coded_side_data,
                              AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t), 0);
  return sd ? sd->data : nullptr;
}
static const uint8_t* displayMatrix(const AVStream* stream, size_t* size) {
  const AVPacketSideData* sd = av_packet_side_data_get(stream->codecpar->coded_side_data,
                                                       stream->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  if (!sd) return nullptr;
  *size = sd->size;
  return sd->data;
}
#else
static uint8_t* newDisplayMatrix(AVStream* stream) {
  return av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t));
}
static const uint8_t* displayMatrix(const AVStream* stream, size_t* size) {
  return av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, size);
}
#endif

void copyDisplayMatrix(const AVStream* from, AVStream* to) {
  size_t size = 0;
  const uint8_t* matrix = displayMatrix(from, &size);
  if (!matrix || size < 9 * sizeof(int32_t)) return;
  uint8_t* copy = newDisplayMatrix(to);
  if (!copy) throw Error("out of memory copying the rotation");
  std::memcpy(copy, matrix, 9 * sizeof(int32_t));
}

void setStreamRotation(AVStream* stream, double degrees) {
  uint8_t* matrix = newDisplayMatrix(stream);
  if (!matrix) throw Error("out of memory setting the rotation");
  av_display_rotation_set(reinterpret_cast<int32_t*>(matrix), degrees);
}

double streamRotation(const AVStream* stream) {
  size_t size = 0;
  const uint8_t* matrix = displayMatrix(stream, &size);
  if (!matrix || size < 9 * sizeof(int32_t)) return 0;
  const double degrees = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  return std::isnan(degrees) ? 0 : degrees;
}

int swsColorspace(AVColorSpace space, int height) {
  switch (space) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
      return SWS_CS_ITU601;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    case AVCOL_SPC_FCC:
      return SWS_CS_FCC;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    default:
      return height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601;
  }
}

std::optional<YuvPlanes> framePlanes(const AVFrame& frame, int cudaDevice) {
  const auto format = static_cast<AVPixelFormat>(frame.format);
  if (format == AV_PIX_FMT_CUDA) return cudaFramePlanes(frame, cudaDevice);
  const int64_t h = frame.height, w = frame.width, ch = (h + 1) / 2, cw = (w + 1) / 2;
  const auto plane = [&](int p, int64_t rows, int64_t cols, int bytes, int64_t channels) {
    const auto type = bytes == 1 ? torch::kUInt8 : torch::kInt16;
    std::vector<int64_t> sizes{rows, cols}, strides{frame.linesize[p] / bytes, channels};
    if (channels == 2) sizes.push_back(2), strides.push_back(1);
    return torch::from_blob(frame.data[p], sizes, strides, type);
  };
  switch (format) {
    case AV_PIX_FMT_YUV420P:
    case AV_PIX_FMT_YUVJ420P:
      return YuvPlanes{plane(0, h, w, 1, 1), plane(1, ch, cw, 1, 1), plane(2, ch, cw, 1, 1), {}};
    case AV_PIX_FMT_NV12:
      return YuvPlanes{plane(0, h, w, 1, 1), {}, {}, plane(1, ch, cw, 1, 2)};
    case AV_PIX_FMT_YUV420P10LE:
      return YuvPlanes{plane(0, h, w, 2, 1), plane(1, ch, cw, 2, 1), plane(2, ch, cw, 2, 1), {}};
    case AV_PIX_FMT_P010LE: {
      // 10 bits in the top of each 16-bit word: as int16 they may read negative, so shift logically.
      return YuvPlanes{topTenBits(plane(0, h, w, 2, 1)), {}, {}, topTenBits(plane(1, ch, cw, 2, 2))};
    }
    default:
      return std::nullopt;
  }
}

YuvFormat frameYuvFormat(const AVFrame& frame) {
  const auto format = static_cast<AVPixelFormat>(frame.format);
  YuvFormat yuv;
  const int space = swsColorspace(colorSpaceOf(frame.colorspace), frame.height);
  yuv.matrix = space == SWS_CS_BT2020   ? YuvFormat::Matrix::kBt2020
               : space == SWS_CS_ITU709 ? YuvFormat::Matrix::kBt709
                                        : YuvFormat::Matrix::kBt601;
  yuv.fullRange = colorRangeOf(frame.color_range) == AVCOL_RANGE_JPEG || format == AV_PIX_FMT_YUVJ420P;
  yuv.bits = format == AV_PIX_FMT_YUV420P10LE || format == AV_PIX_FMT_P010LE ? 10 : 8;
  return yuv;
}

FramePtr planesToFrame(const YuvPlanes& planes, int bits) {
  const int height = int(planes.y.size(0)), width = int(planes.y.size(1)), bytes = bits > 8 ? 2 : 1;
  FramePtr frame = allocFrame(bits > 8 ? AV_PIX_FMT_YUV420P10LE : AV_PIX_FMT_YUV420P, width, height);
  const torch::Tensor* sources[] = {&planes.y, &planes.u, &planes.v};
  for (int p = 0; p < 3; ++p) {
    const torch::Tensor t = sources[p]->to(torch::kCPU).contiguous();
    const int64_t rows = t.size(0), rowBytes = t.size(1) * bytes;
    const auto* src = static_cast<const uint8_t*>(t.data_ptr());
    for (int64_t row = 0; row < rows; ++row)
      std::memcpy(frame->data[p] + row * frame->linesize[p], src + row * rowBytes, rowBytes);
  }
  return frame;
}

}  // namespace stylize::av
