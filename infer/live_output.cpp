#include "infer/live_output.h"

extern "C" {
#include <libavdevice/avdevice.h>
#include <libavutil/opt.h>
}
#include <fcntl.h>
#include <linux/videodev2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "data/error.h"
#include "data/files.h"

namespace fs = std::filesystem;

namespace stylize {
namespace {

using Clock = std::chrono::steady_clock;

const char* kLoopbackHint =
    "create a virtual camera with: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Stylize";

// A V4L2 output device, checked before libavdevice opens it, so that the user learns what is wrong.
void checkVideoOutputDevice(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) throw Error(path + ": no such device; " + kLoopbackHint);
  if (!S_ISCHR(info.st_mode)) throw Error(path + ": not a V4L2 device; " + kLoopbackHint);
  const int fd = open(path.c_str(), O_RDWR | O_NONBLOCK);
  if (fd < 0) {
    const int error = errno;
    if (error == EBUSY) throw Error(path + ": busy (another program is writing to it)");
    throw Error(path + ": cannot open: " + std::strerror(error));
  }
  v4l2_capability caps{};
  const bool queried = ioctl(fd, VIDIOC_QUERYCAP, &caps) == 0;
  close(fd);
  if (!queried) throw Error(path + ": not a V4L2 device; " + kLoopbackHint);
  const uint32_t what = (caps.capabilities & V4L2_CAP_DEVICE_CAPS) ? caps.device_caps : caps.capabilities;
  if (!(what & V4L2_CAP_VIDEO_OUTPUT))
    throw Error(path + ": a V4L2 capture device (a camera), not an output; " + kLoopbackHint);
}

// The container a URL's protocol carries.
const char* streamFormat(const std::string& target) {
  const std::string scheme = target.substr(0, target.find("://"));
  if (scheme == "udp" || scheme == "tcp" || scheme == "srt") return "mpegts";
  if (scheme == "rtp") return "rtp_mpegts";  // static payload type 33: receivers need no SDP
  if (scheme == "rtmp" || scheme == "rtmps") return "flv";
  throw Error("--output " + target + ": unknown protocol '" + scheme + "' (udp, rtp, tcp, srt or rtmp)");
}

}  // namespace

LiveOutput::LiveOutput(LiveOutputOptions options) : options_(std::move(options)) {
  const std::string& target = options_.target;
  device_ = target.rfind("/dev/", 0) == 0;
  const bool stream = target.find("://") != std::string::npos;
  file_ = !device_ && !stream;
  if (options_.width < 2 || options_.height < 2) throw Error("--output " + target + ": no picture size");
  if (!(options_.fps > 0 && options_.fps <= 240)) options_.fps = 30;
  frameRate_ = av_d2q(options_.fps, 1001000);
  // 4:2:2 and 4:2:0 need even sizes; the picture is scaled to it.
  const int width = options_.width & ~1, height = options_.height & ~1;

  AVPixelFormat pixelFormat = AV_PIX_FMT_YUV420P;
  if (device_) {
    const std::string name = options_.pixelFormat.empty() ? "yuyv422" : options_.pixelFormat;
    if (name != "yuyv422" && name != "yuv420p")
      throw Error("--output-format " + name + ": a virtual camera takes yuyv422 or yuv420p");
    pixelFormat = av_get_pix_fmt(name.c_str());
  }
  avdevice_register_all();
  AVFormatContext* raw = nullptr;
  if (device_) {
    checkVideoOutputDevice(target);
    avformat_alloc_output_context2(&raw, nullptr, "v4l2", target.c_str());
    if (!raw) throw Error(target + ": this FFmpeg has no v4l2 output (libavdevice)");
  } else if (stream) {
    avformat_alloc_output_context2(&raw, nullptr, streamFormat(target), target.c_str());
    if (!raw) throw Error("--output " + target + ": this FFmpeg cannot stream " + streamFormat(target));
  } else {
    checkWritable(target);
    avformat_alloc_output_context2(&raw, nullptr, nullptr, target.c_str());
    if (!raw)
      throw Error(target + ": unknown video container '" + fs::path(target).extension().string() +
                  "' (use .mkv, .mp4 or .ts)");
  }
  format_.reset(raw);

  // A device gets raw frames in the pixel format it is asked for; everything else H.264 tuned for latency.
  const AVCodec* encoder =
      device_ ? avcodec_find_encoder(AV_CODEC_ID_RAWVIDEO) : avcodec_find_encoder_by_name("libx264");
  if (!encoder)
    throw Error("--output " + target + ": this FFmpeg has no " + (device_ ? "rawvideo" : "libx264") + " encoder");
  codec_.reset(avcodec_alloc_context3(encoder));
  if (!codec_) throw Error("out of memory opening the encoder");
  codec_->width = width;
  codec_->height = height;
  codec_->pix_fmt = pixelFormat;
  codec_->time_base = av_inv_q(frameRate_);
  codec_->framerate = frameRate_;
  codec_->colorspace = height >= 720 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;
  codec_->color_range = AVCOL_RANGE_MPEG;
  if (!device_) {
    // No lookahead or B-frames (zerolatency), a key frame every second so that a receiver that joins late
    // shows a picture within a second, and the fastest preset: the model needs the cores.
    codec_->gop_size = std::max(1, static_cast<int>(std::lround(options_.fps)));
    codec_->thread_count = 1;
    av_opt_set(codec_->priv_data, "preset", "ultrafast", 0);
    av_opt_set(codec_->priv_data, "tune", "zerolatency", 0);
    av_opt_set(codec_->priv_data, "crf", "23", 0);
  }
  if (format_->oformat->flags & AVFMT_GLOBALHEADER) codec_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  av::check(avcodec_open2(codec_.get(), encoder, nullptr), "--output " + target + ": opening the encoder");
  AVStream* out = avformat_new_stream(format_.get(), nullptr);
  if (!out) throw Error("out of memory adding a stream");
  av::check(avcodec_parameters_from_context(out->codecpar, codec_.get()), "--output " + target);
  out->time_base = codec_->time_base;
  out->avg_frame_rate = frameRate_;

  if (options_.audio && !device_) {
    audio_ = std::make_unique<AudioTranscoder>(*options_.audio, *format_);
    format_->max_interleave_delta = 1000000;  // if the sound stops, the picture waits at most a second
  }
  if (!(format_->oformat->flags & AVFMT_NOFILE)) {
    if (file_) temporary_ = temporarySibling(target);
    const std::string url = file_ ? temporary_.string() : target;
    AVDictionary* ioOptions = nullptr;
    if (!file_) av_dict_set(&ioOptions, "rw_timeout", "5000000", 0);  // a stalled connection fails, never blocks
    const int status = avio_open2(&format_->pb, url.c_str(), AVIO_FLAG_WRITE, nullptr, &ioOptions);
    av_dict_free(&ioOptions);
    if (status < 0) throw Error("--output " + target + ": cannot open: " + av::errorString(status));
  }
  AVDictionary* muxerOptions = nullptr;
  if (!device_ && !file_) av_dict_set(&muxerOptions, "flush_packets", "1", 0);  // each frame leaves at once
  const int status = avformat_write_header(format_.get(), &muxerOptions);
  av_dict_free(&muxerOptions);
  if (status < 0) {
    if (file_) {
      avio_closep(&format_->pb);
      std::error_code ec;
      fs::remove(temporary_, ec);
    }
    throw Error(target + ": cannot start writing: " + av::errorString(status));
  }
  frame_ = av::allocFrame(pixelFormat, width, height);
  packet_ = av::allocPacket();
  thread_ = std::thread([this] { sendLoop(); });
}

LiveOutput::~LiveOutput() {
  try {
    finish();
  } catch (const std::exception&) {
  }
  if (file_ && !temporary_.empty()) {
    std::error_code ec;
    fs::remove(temporary_, ec);  // not finished: nothing at the output's name
  }
}

void LiveOutput::offer(const torch::Tensor& rgb, Clock::time_point capturedAt) {
  {
    std::lock_guard lock(mutex_);
    ++offered_;
    if (!audio_) {
      stats_.skipped += static_cast<int64_t>(pictures_.size());
      pictures_.clear();
    } else if (pictures_.size() >= 64) {  // the sending thread is stuck: keep the newest
      pictures_.pop_front();
      ++stats_.skipped;
    }
    pictures_.push_back({rgb, capturedAt});  // the caller hands over a picture it no longer changes
  }
  wake_.notify_all();
}

void LiveOutput::sendLoop() {
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1 / options_.fps));
  // Without sound a picture goes at the next tick after it comes: the lowest latency. With sound each goes
  // when it is `audioDelay` old, the sound at the same age (offerAudio), so both keep the capture's timing.
  const bool withSound = audio_ != nullptr;
  const auto delay =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(withSound ? options_.audioDelay : 0.0));
  Clock::time_point& start = start_;
  Clock::time_point next{};
  int64_t& lastPts = lastPts_;
  torch::Tensor picture;
  for (;;) {
    Clock::time_point capturedAt;
    bool fresh = false;
    {
      std::unique_lock lock(mutex_);
      if (!picture.defined()) {
        // Nothing sent yet: the first picture starts the clock.
        wake_.wait(lock, [&] { return stopping_ || !pictures_.empty(); });
        if (!stopping_ && withSound) {
          origin_ = pictures_.front().capturedAt;
          start = next = *origin_ + delay;
        }
      }
      if (start != Clock::time_point{}) wake_.wait_until(lock, next, [&] { return stopping_; });
      if (stopping_) return;
      // The newest picture whose time has come.
      const auto now = Clock::now();
      int64_t chosen = -1;
      for (size_t i = 0; i < pictures_.size(); ++i)
        if (pictures_[i].capturedAt + delay <= now + period / 2) chosen = static_cast<int64_t>(i);
      if (chosen >= 0) {
        stats_.skipped += chosen;
        picture = pictures_[chosen].rgb;
        capturedAt = pictures_[chosen].capturedAt;
        pictures_.erase(pictures_.begin(), pictures_.begin() + chosen + 1);
        fresh = true;
        if (withSound && capturedAt + delay + period < now) ++stats_.late;
      }
    }
    const auto now = Clock::now();
    if (start == Clock::time_point{}) start = next = now;
    if (!picture.defined()) {  // (cannot happen: the first picture is due when the clock starts)
      next += period;
      continue;
    }
    // Timestamps follow the clock: after a stall (a slow network) the next frame says so, never a burst.
    const int64_t pts = std::max(lastPts + 1, static_cast<int64_t>((now - start) / period));
    try {
      send(fresh ? &picture : nullptr, pts);
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      error_ = e.what();
      return;
    }
    lastPts = pts;
    {
      std::lock_guard lock(mutex_);
      ++stats_.sent;
      if (!fresh) ++stats_.repeated;
      if (fresh) latencies_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - capturedAt).count());
      if (latencies_.size() > 1000) latencies_.erase(latencies_.begin(), latencies_.begin() + 500);
    }
    next = start + (pts + 1) * period;
  }
}

void LiveOutput::offerAudio(const AVPacket& packet, Clock::time_point capturedAt) {
  if (!audio_) return;
  std::optional<Clock::time_point> origin;
  {
    std::lock_guard lock(mutex_);
    origin = origin_;
  }
  std::lock_guard mux(muxMutex_);
  if (audioClosed_) return;
  try {
    if (!origin) {  // no picture sent yet: keep the last seconds of sound, the first picture may be in them
      av::PacketPtr copy = av::allocPacket();
      av::check(av_packet_ref(copy.get(), &packet), "audio");
      audioBacklog_.emplace_back(std::move(copy), capturedAt);
      while (!audioBacklog_.empty() && capturedAt - audioBacklog_.front().second > std::chrono::seconds(5))
        audioBacklog_.pop_front();
      return;
    }
    for (auto& [kept, at] : audioBacklog_) writeAudio(*kept, at);
    audioBacklog_.clear();
    writeAudio(packet, capturedAt);
  } catch (const std::exception& e) {
    audioClosed_ = true;  // the picture goes on without sound, and says so at the end
    std::lock_guard lock(mutex_);
    stats_.audioError = e.what();
  }
}

// Under muxMutex_, once the first picture's capture time (origin_) is known.
void LiveOutput::writeAudio(const AVPacket& packet, Clock::time_point capturedAt) {
  const AVRational timeBase = options_.audio->time_base;
  const Clock::time_point origin = *origin_;
  const auto half = std::chrono::microseconds(av_rescale_q(packet.duration, timeBase, {1, 1000000}) / 2);
  if (capturedAt + half < origin) return;  // sound from before the first picture
  // The sound's place on the output's timeline is its capture time after the first picture's, as the
  // pictures' is; the transcoder counts samples from there.
  av::PacketPtr placed = av::allocPacket();
  av::check(av_packet_ref(placed.get(), &packet), "audio");
  const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(capturedAt - origin).count();
  placed->pts = placed->dts = av_rescale_q(std::max<int64_t>(0, us), {1, 1000000}, timeBase);
  audio_->write(*placed);
}

void LiveOutput::send(const torch::Tensor* picture, int64_t pts) {
  frame_->pts = pts;
  if (!picture) {  // a repeat: frame_ still holds the converted picture
    av::check(avcodec_send_frame(codec_.get(), frame_.get()), options_.target + ": encoding");
    drain(false);
    return;
  }
  const torch::Tensor& rgb = *picture;
  const int width = static_cast<int>(rgb.size(1)), height = static_cast<int>(rgb.size(0));
  if (!sws_ || swsWidth_ != width || swsHeight_ != height) {
    sws_.reset(sws_getContext(width, height, AV_PIX_FMT_RGB24, codec_->width, codec_->height, codec_->pix_fmt,
                              SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws_)
      throw Error(options_.target + ": cannot convert " + std::to_string(width) + "x" + std::to_string(height));
    const int* matrix = sws_getCoefficients(av::swsColorspace(codec_->colorspace, codec_->height));
    sws_setColorspaceDetails(sws_.get(), matrix, 1, matrix, 0, 0, 1 << 16, 1 << 16);
    swsWidth_ = width;
    swsHeight_ = height;
  }
  av::check(av_frame_make_writable(frame_.get()), options_.target);
  const uint8_t* source[1] = {rgb.data_ptr<uint8_t>()};
  const int stride[1] = {width * 3};
  sws_scale(sws_.get(), source, stride, 0, height, frame_->data, frame_->linesize);
  av::check(avcodec_send_frame(codec_.get(), frame_.get()), options_.target + ": encoding");
  drain(false);
}

void LiveOutput::drain(bool flush) {
  for (;;) {
    const int status = avcodec_receive_packet(codec_.get(), packet_.get());
    if (status == AVERROR(EAGAIN) || (flush && status == AVERROR_EOF)) return;
    av::check(status, options_.target + ": encoding");
    av_packet_rescale_ts(packet_.get(), codec_->time_base, format_->streams[0]->time_base);
    packet_->stream_index = 0;
    std::lock_guard mux(muxMutex_);
    av::check(av_interleaved_write_frame(format_.get(), packet_.get()), options_.target + ": sending");
  }
}

void LiveOutput::finish() {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    stopping_ = true;
    finished_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!error_.empty()) throw Error(error_);
  if (audio_ && start_ != Clock::time_point{}) {
    // Pictures still waiting for their time go out now, at their times: the recording ends where the sound does.
    const auto period = std::chrono::duration<double>(1 / options_.fps);
    for (const Picture& p : pictures_) {
      const double due = std::chrono::duration<double>(p.capturedAt - *origin_).count();
      lastPts_ = std::max(lastPts_ + 1, static_cast<int64_t>(std::lround(due / period.count())));
      send(&p.rgb, lastPts_);
      ++stats_.sent;
    }
    pictures_.clear();
  }
  av::check(avcodec_send_frame(codec_.get(), nullptr), options_.target + ": flushing the encoder");
  drain(true);
  std::lock_guard mux(muxMutex_);
  if (audio_ && !audioClosed_) audio_->finish();
  audioClosed_ = true;
  av::check(av_write_trailer(format_.get()), options_.target + ": finishing");
  if (!(format_->oformat->flags & AVFMT_NOFILE)) avio_closep(&format_->pb);
  if (file_) {
    if (stats_.sent == 0) throw Error(options_.target + ": no frames to record; nothing was written");
    std::error_code ec;
    fs::rename(temporary_, options_.target, ec);
    if (ec) throw Error(options_.target + ": cannot move the recording into place: " + ec.message());
    temporary_.clear();
  }
}

LiveOutputStats LiveOutput::stats() const {
  std::lock_guard lock(mutex_);
  LiveOutputStats s = stats_;
  if (!latencies_.empty()) {
    std::vector<double> sorted = latencies_;
    std::sort(sorted.begin(), sorted.end());
    s.latencyMedianMs = sorted[sorted.size() / 2];
    s.latencyP95Ms = sorted[std::min(sorted.size() - 1, sorted.size() * 95 / 100)];
  }
  return s;
}

}  // namespace stylize
