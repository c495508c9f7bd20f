#include "infer/video_decoder.h"

#include <torch/cuda.h>

#include <cstring>

extern "C" {
#include <libavdevice/avdevice.h>
#include <libavutil/hwcontext.h>
}

#include <algorithm>
#include <cmath>
#include <mutex>

#include "data/error.h"

namespace stylize {

namespace {

int64_t toMicroseconds(int64_t ts, AVRational timeBase) { return av_rescale_q(ts, timeBase, AV_TIME_BASE_Q); }

}  // namespace

VideoDecoder::VideoDecoder(const std::string& url, const ReadOptions& options) : url_(url), options_(options) {
  static std::once_flag devices;
  std::call_once(devices, [] { avdevice_register_all(); });
  // Bounded so that microseconds fit in 64 bits with room to spare (10⁹ s is 31 years).
  if (!(options.start >= 0 && options.start < 1e9)) throw Error("--start must be 0 to 10⁹ seconds");
  if (!(options.duration >= 0 && options.duration < 1e9)) throw Error("--duration must be 0 to 10⁹ seconds");

  const AVInputFormat* demuxer = nullptr;
  if (!options.format.empty()) {
    demuxer = av_find_input_format(options.format.c_str());
    if (!demuxer) throw Error(url + ": this FFmpeg has no '" + options.format + "' input");
  }
  AVDictionary* dict = nullptr;
  for (const auto& [key, value] : options.demuxerOptions) av_dict_set(&dict, key.c_str(), value.c_str(), 0);
  AVFormatContext* raw = nullptr;
  if (options.memory) {
    memory_.bytes = options.memory;
    constexpr int kBufferSize = 1 << 16;
    auto* buffer = static_cast<unsigned char*>(av_malloc(kBufferSize));
    if (!buffer) throw Error("out of memory opening " + url);
    auto read = [](void* opaque, uint8_t* to, int size) -> int {
      auto* m = static_cast<MemoryReader*>(opaque);
      const int64_t left = int64_t(m->bytes->size()) - m->position;
      if (left <= 0) return AVERROR_EOF;
      const int n = int(std::min<int64_t>(size, left));
      std::memcpy(to, m->bytes->data() + m->position, size_t(n));
      m->position += n;
      return n;
    };
    auto seek = [](void* opaque, int64_t offset, int whence) -> int64_t {
      auto* m = static_cast<MemoryReader*>(opaque);
      const int64_t size = int64_t(m->bytes->size());
      if (whence == AVSEEK_SIZE) return size;
      const int64_t base = (whence & 3) == SEEK_CUR ? m->position : (whence & 3) == SEEK_END ? size : 0;
      if (offset > size || offset < -size || base + offset < 0 || base + offset > size) return AVERROR(EINVAL);
      return m->position = base + offset;
    };
    memoryIo_.reset(avio_alloc_context(buffer, kBufferSize, 0, &memory_, read, nullptr, seek));
    if (!memoryIo_) {
      av_free(buffer);
      throw Error("out of memory opening " + url);
    }
    raw = avformat_alloc_context();
    if (!raw) throw Error("out of memory opening " + url);
    raw->pb = memoryIo_.get();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  }
  const int opened = avformat_open_input(&raw, options.memory ? "" : url.c_str(), demuxer, &dict);
  av_dict_free(&dict);  // what is left are options the demuxer did not know
  if (opened < 0) {
    const std::string why = opened == AVERROR_INVALIDDATA ? "not a video FFmpeg can read (empty, truncated or another "
                                                            "format)"
                                                          : av::errorString(opened);
    throw Error(url + ": cannot open: " + why);
  }
  format_.reset(raw);
  if (const int r = avformat_find_stream_info(format_.get(), nullptr); r < 0)
    throw Error(url + ": cannot read the stream layout: " + av::errorString(r));

  const AVCodec* decoder = nullptr;
  stream_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
  if (stream_ == AVERROR_STREAM_NOT_FOUND) throw Error(url + ": has no video stream");
  if (stream_ < 0 || !decoder) throw Error(url + ": no decoder for its video stream in this FFmpeg");
  AVStream* stream = format_->streams[stream_];

  codec_.reset(avcodec_alloc_context3(decoder));
  if (!codec_) throw Error("out of memory opening " + url);
  av::check(avcodec_parameters_to_context(codec_.get(), stream->codecpar), url);
  codec_->pkt_timebase = stream->time_base;
  if (options.lowDelay) {
    codec_->flags |= AV_CODEC_FLAG_LOW_DELAY;
    codec_->thread_type = FF_THREAD_SLICE;  // frame threads buffer one frame per thread
  }
  codec_->thread_count = 0;  // FFmpeg picks by core count; decode is a small share next to inference
  if (options.hwaccel == HwAccel::kCuda || (options.hwaccel == HwAccel::kAuto && torch::cuda::is_available())) {
    std::string why;
    info_.hardwareDecoding = enableCudaDecoding(codec_.get(), options.cudaDevice, why);
    if (!info_.hardwareDecoding && options.hwaccel == HwAccel::kCuda)
      info_.decodeNote = "--hwaccel cuda: " + why + "; decoding in software";
  }
  if (const int r = avcodec_open2(codec_.get(), decoder, nullptr); r < 0)
    throw Error(url + ": cannot open the " + decoder->name + " decoder: " + av::errorString(r));
  if (codec_->width <= 0 || codec_->height <= 0) throw Error(url + ": the video stream has no frame size");

  if ((options.width > 0) != (options.height > 0) || options.width < 0 || options.height < 0)
    throw Error(url + ": the size to scale to needs both a width and a height");
  // Scaling rides on the RGB conversion that happens anyway: one swscale pass.
  info_.width = options.width > 0 ? options.width : codec_->width;
  info_.height = options.height > 0 ? options.height : codec_->height;
  info_.timeBase = stream->time_base;
  info_.frameRate = av_guess_frame_rate(format_.get(), stream, nullptr);
  info_.sampleAspect = av_guess_sample_aspect_ratio(format_.get(), stream, nullptr);
  info_.rotation = av::streamRotation(stream);
  info_.codec = decoder->name;

  const int64_t containerStart = format_->start_time == AV_NOPTS_VALUE ? 0 : format_->start_time;
  originUs_ = containerStart + static_cast<int64_t>(std::llround(options.start * 1e6));
  clocks_.assign(format_->nb_streams, Clock{});
  pastEnd_.assign(format_->nb_streams, false);
  double total = format_->duration > 0  ? format_->duration / 1e6
                 : stream->duration > 0 ? stream->duration * av_q2d(stream->time_base)
                                        : 0;
  if (total > 0 && options.start >= total)
    throw Error(url + ": --start " + fmt::format("{:g}", options.start) + " s is past the end of the video (" +
                fmt::format("{:.3f}", total) + " s)");
  if (total > 0) total = std::max(0.0, total - options.start);
  if (options.duration > 0) total = total > 0 ? std::min(total, options.duration) : options.duration;
  info_.duration = total;
  const double fps = info_.frameRate.num > 0 ? av_q2d(info_.frameRate) : 0;
  info_.frames = options.start == 0 && options.duration == 0 && stream->nb_frames > 0
                     ? stream->nb_frames
                     : static_cast<int64_t>(std::llround(total * fps));

  decoded_ = av::allocFrame();
  packet_ = av::allocPacket();
  if (options.start > 0) seekToKeyframeBefore(containerStart);
}

// Formats without an index (MPEG-TS, MPEG-PS) seek by byte position and can land inside a group of
// pictures, after its keyframe: the frames up to the next keyframe cannot be decoded and the window would
// start late. So the first video keyframe read after a seek must lie at or before the target; if not, the
// seek steps back 1, 2, 4, ... s until it does or reaches the file's start.
void VideoDecoder::seekToKeyframeBefore(int64_t fileStartUs) {
  const AVStream* stream = format_->streams[stream_];
  for (int64_t back = 0;; back = back == 0 ? 1'000'000 : 2 * back) {
    const int64_t at = std::max(originUs_ - back, fileStartUs);
    if (avformat_seek_file(format_.get(), -1, INT64_MIN, at, at, 0) < 0)
      throw Error(url_ + ": cannot seek to --start " + std::to_string(options_.start) + " s");
    if (at == fileStartUs) return;
    int64_t keyUs = AV_NOPTS_VALUE;
    for (int packets = 0; keyUs == AV_NOPTS_VALUE && packets < 100000; ++packets) {
      if (av_read_frame(format_.get(), packet_.get()) < 0) break;
      const int64_t ts = packet_->pts != AV_NOPTS_VALUE ? packet_->pts : packet_->dts;
      if (packet_->stream_index == stream_ && (packet_->flags & AV_PKT_FLAG_KEY) && ts != AV_NOPTS_VALUE)
        keyUs = av_rescale_q(ts, stream->time_base, AV_TIME_BASE_Q);
      av_packet_unref(packet_.get());
    }
    if (keyUs != AV_NOPTS_VALUE && keyUs <= originUs_) {
      if (avformat_seek_file(format_.get(), -1, INT64_MIN, at, at, 0) < 0)
        throw Error(url_ + ": cannot seek to --start " + std::to_string(options_.start) + " s");
      return;
    }
  }
}

void VideoDecoder::retime(AVPacket& packet) {
  const AVRational tb = format_->streams[packet.stream_index]->time_base;
  const int64_t dts = packet.dts != AV_NOPTS_VALUE ? packet.dts : packet.pts;
  if (dts == AV_NOPTS_VALUE) return;
  // Formats that may restart their clock mid-stream (MPEG-TS captures, concatenations): a dts more than
  // 0.1 s behind its stream's last, or 10 s past the expected next one, is a discontinuity (ffmpeg's own
  // rule), and the stream continues one packet after where it was. Per stream, so that packets interleaved
  // across the jump cannot move the other streams.
  if (packet.stream_index >= int(clocks_.size())) clocks_.resize(packet.stream_index + 1);  // a stream found late
  Clock& clock = clocks_[packet.stream_index];
  int64_t us = toMicroseconds(dts, tb) + clock.shiftUs;
  if ((format_->iformat->flags & AVFMT_TS_DISCONT) && clock.lastUs != AV_NOPTS_VALUE) {
    // MPEG-TS stores no video durations: the stream's last step stands in.
    const int64_t step = packet.duration > 0 ? toMicroseconds(packet.duration, tb) : clock.stepUs;
    const int64_t expected = clock.lastUs + step;
    if (us + AV_TIME_BASE / 10 < clock.lastUs || us - expected > 10 * int64_t{AV_TIME_BASE}) {
      clock.shiftUs += expected - us;
      us = expected;
    } else if (us > clock.lastUs) {
      clock.stepUs = us - clock.lastUs;
    }
  }
  clock.lastUs = us;
  const int64_t offset = av_rescale_q(clock.shiftUs - originUs_, AV_TIME_BASE_Q, tb);
  if (packet.pts != AV_NOPTS_VALUE) packet.pts += offset;
  if (packet.dts != AV_NOPTS_VALUE) packet.dts += offset;
}

int64_t VideoDecoder::windowEndUs() const {
  return options_.duration > 0 ? static_cast<int64_t>(std::llround(options_.duration * 1e6)) : INT64_MAX / 2;
}

bool VideoDecoder::otherStreamsPastEnd() const {
  for (size_t i = 0; i < pastEnd_.size(); ++i) {
    const AVStream* s = format_->streams[i];
    const bool carried =
        s->codecpar->codec_type == AVMEDIA_TYPE_AUDIO || s->codecpar->codec_type == AVMEDIA_TYPE_SUBTITLE;
    if (int(i) != stream_ && carried && !(s->disposition & AV_DISPOSITION_ATTACHED_PIC) && !pastEnd_[i]) return false;
  }
  return true;
}

bool VideoDecoder::inWindow(int64_t us) const {
  if (options_.start > 0 && us < 0) return false;  // decoded from the keyframe before --start
  return us < windowEndUs();
}

bool VideoDecoder::next(Item& item) {
  item.frame.reset();
  item.packet.reset();
  while (!finished_) {
    const int received = videoEnded_ ? AVERROR(EAGAIN) : avcodec_receive_frame(codec_.get(), decoded_.get());
    if (received == 0) {
      int64_t pts = decoded_->best_effort_timestamp;
      if (pts == AV_NOPTS_VALUE) pts = decoded_->pts;
      const int64_t us = pts == AV_NOPTS_VALUE ? 0 : toMicroseconds(pts, info_.timeBase);
      if (!inWindow(us)) {
        av_frame_unref(decoded_.get());
        if (us < 0) continue;
        videoEnded_ = true;
        finished_ = otherStreamsPastEnd();
        if (finished_) return false;
        continue;
      }
      const int64_t duration = av::frameDuration(*decoded_);
      const bool scaling = decoded_->width != info_.width || decoded_->height != info_.height;
      if (options_.keepYuv && !scaling && av::framePlanes(*decoded_, options_.cudaDevice)) {
        item.frame = av::allocFrame();
        av_frame_move_ref(item.frame.get(), decoded_.get());
      } else if (decoded_->format == AV_PIX_FMT_CUDA) {  // GPU frames that must become RGB: copy them back
        av::FramePtr system = av::allocFrame();
        av::check(av_hwframe_transfer_data(system.get(), decoded_.get(), 0), url_ + ": copying a decoded frame");
        av_frame_copy_props(system.get(), decoded_.get());
        item.frame = toRgb(*system);
      } else {
        item.frame = toRgb(*decoded_);
      }
      item.frame->pts = pts;
      av::setFrameDuration(*item.frame, duration);
      av_frame_unref(decoded_.get());
      ++framesDecoded_;
      return true;
    }
    if (received == AVERROR_EOF) {
      finished_ = true;
      return false;
    }
    if (received != AVERROR(EAGAIN)) {  // a broken frame: skip it, keep the rest
      ++skippedPackets_;
      continue;
    }
    if (flushing_) {
      finished_ = true;
      return false;
    }
    const int read = av_read_frame(format_.get(), packet_.get());
    if (read == AVERROR(EAGAIN)) {  // live devices: nothing new yet
      av_usleep(2000);
      continue;
    }
    if (read < 0) {
      if (read != AVERROR_EOF) endError_ = av::errorString(read);
      flushing_ = true;
      avcodec_send_packet(codec_.get(), nullptr);
      continue;
    }
    retime(*packet_);
    const int index = packet_->stream_index;
    const int64_t ts = packet_->pts != AV_NOPTS_VALUE ? packet_->pts : packet_->dts;
    const int64_t us = ts == AV_NOPTS_VALUE ? AV_NOPTS_VALUE : toMicroseconds(ts, format_->streams[index]->time_base);
    if (videoEnded_ && us != AV_NOPTS_VALUE && us > windowEndUs() + kInterleaveSlackUs) {
      av_packet_unref(packet_.get());  // far past the end in every stream: a silent stream waits no longer
      finished_ = true;
      return false;
    }
    if (index != stream_) {
      if (us == AV_NOPTS_VALUE || inWindow(us)) {
        item.packet = av::allocPacket();
        av_packet_move_ref(item.packet.get(), packet_.get());
        return true;
      }
      av_packet_unref(packet_.get());
      if (us >= 0 && pastEnd_.size() > size_t(index)) pastEnd_[index] = true;
      if (videoEnded_ && otherStreamsPastEnd()) {
        finished_ = true;
        return false;
      }
      continue;
    }
    if (videoEnded_) {
      av_packet_unref(packet_.get());
      continue;
    }
    const int sent = avcodec_send_packet(codec_.get(), packet_.get());
    av_packet_unref(packet_.get());
    if (sent < 0 && sent != AVERROR(EAGAIN)) ++skippedPackets_;
  }
  return false;
}

bool VideoDecoder::rewind() {
  if (avformat_seek_file(format_.get(), -1, INT64_MIN, originUs_, originUs_, 0) < 0) return false;
  clocks_.assign(clocks_.size(), Clock{});  // a loop back to the start is not a discontinuity
  avcodec_flush_buffers(codec_.get());
  flushing_ = finished_ = videoEnded_ = false;
  pastEnd_.assign(pastEnd_.size(), false);
  endError_.clear();
  return true;
}

av::FramePtr VideoDecoder::toRgb(const AVFrame& frame) {
  const auto format = static_cast<AVPixelFormat>(frame.format);
  const bool fullRange = av::colorRangeOf(frame.color_range) == AVCOL_RANGE_JPEG || format == AV_PIX_FMT_YUVJ420P ||
                         format == AV_PIX_FMT_YUVJ422P || format == AV_PIX_FMT_YUVJ444P;
  const int space = av::swsColorspace(av::colorSpaceOf(frame.colorspace), frame.height);
  if (!sws_ || frame.width != swsWidth_ || frame.height != swsHeight_ || frame.format != swsFormat_ ||
      space != swsSpace_ || int(fullRange) != swsRange_) {
    // Same size: the full chroma interpolation and accurate rounding keep colours exact. Scaling (a camera
    // size asked of a file): plain bilinear, which costs a third of those flags at 30 fps, and the scaled
    // picture is not exact anyway.
    const bool scaling = frame.width != info_.width || frame.height != info_.height;
    const int flags = scaling ? SWS_BILINEAR : SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT;
    sws_.reset(sws_getContext(frame.width, frame.height, format, info_.width, info_.height, AV_PIX_FMT_RGB24, flags,
                              nullptr, nullptr, nullptr));
    if (!sws_)
      throw Error(url_ + ": cannot convert " + (av_get_pix_fmt_name(format) ? av_get_pix_fmt_name(format) : "?") +
                  " frames to RGB");
    sws_setColorspaceDetails(sws_.get(), sws_getCoefficients(space), fullRange, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                             0, 1 << 16, 1 << 16);
    swsWidth_ = frame.width, swsHeight_ = frame.height, swsFormat_ = frame.format;
    swsSpace_ = space, swsRange_ = fullRange;
  }
  av::FramePtr rgb = av::allocFrame(AV_PIX_FMT_RGB24, info_.width, info_.height);
  sws_scale(sws_.get(), frame.data, frame.linesize, 0, frame.height, rgb->data, rgb->linesize);
  return rgb;
}

}  // namespace stylize
