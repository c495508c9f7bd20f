// Test videos made with libav inside the tests: exact sizes, timestamps, audio and rotation that the
// pipeline must keep, and a reader that lists what a finished file holds.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "infer/ffmpeg.h"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
}

namespace stylize::test {

struct VideoSpec {
  int width = 64, height = 48;
  std::vector<int64_t> framesMs;  // presentation time of each frame in milliseconds (irregular = VFR)
  bool audio = false;             // a 440 Hz tone, audioSeconds long from audioStartMs
  double audioSeconds = 1;
  int64_t audioStartMs = 0;
  int64_t toneFromMs = 0;  // silence before this time (for A/V sync checks: a tone that starts with a cut)
  AVCodecID audioCodec = AV_CODEC_ID_AAC;  // or FLAC, PCM_S16LE, ...: any encoder taking mono s16 or float
  bool video = true;
  double rotation = 0;
  bool still = false;     // every frame the same picture
  int cutAt = -1;         // from this frame on, a different picture (a shot change)
  int motionX = 0;        // else: a texture that moves this many pixels right per frame (exact flow)
  bool lossless = false;  // FFV1 (in .mkv) instead of MPEG-4: decoded frames are exactly what was written
  AVCodecID videoCodec = AV_CODEC_ID_NONE;         // else MPEG-4 (FFV1 when lossless)
  AVPixelFormat pixelFormat = AV_PIX_FMT_YUV420P;  // the pattern is drawn in 4:2:0 and converted by swscale
  AVCodecID subtitleCodec = AV_CODEC_ID_NONE;      // SUBRIP or MOV_TEXT: three cues at 0, 0.4 and 0.8 s
};

inline std::vector<int64_t> constantRate(int frames, double fps) {
  std::vector<int64_t> ms;
  for (int i = 0; i < frames; ++i) ms.push_back(std::llround(i * 1000 / fps));
  return ms;
}

namespace detail {
// `duration` in codec ticks: the last packet's duration tells mp4 how long the last frame lasts.
inline void drainTo(AVFormatContext* out, AVCodecContext* codec, AVStream* stream, int64_t duration) {
  av::PacketPtr packet = av::allocPacket();
  while (avcodec_receive_packet(codec, packet.get()) == 0) {
    if (packet->duration == 0) packet->duration = duration;
    av_packet_rescale_ts(packet.get(), codec->time_base, stream->time_base);
    packet->stream_index = stream->index;
    av::check(av_interleaved_write_frame(out, packet.get()), "test video");
  }
}
}  // namespace detail

// MPEG-4 Part 2 (or FFV1) video, no B-frames, so timestamps stay exactly as given.
inline void writeTestVideo(const std::filesystem::path& path, const VideoSpec& spec) {
  AVFormatContext* raw = nullptr;
  av::check(avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str()), "test video");
  av::OutputFormatPtr out(raw);
  av::CodecContextPtr video, audio;
  AVStream *videoStream = nullptr, *audioStream = nullptr;
  const AVCodecID videoCodec = spec.videoCodec != AV_CODEC_ID_NONE ? spec.videoCodec
                               : spec.lossless                     ? AV_CODEC_ID_FFV1
                                                                   : AV_CODEC_ID_MPEG4;
  // MPEG-1/2 allow only standard frame rates and AVI has a constant one; GIF counts in 1/100 s.
  const AVRational videoTimeBase =
      videoCodec == AV_CODEC_ID_MPEG2VIDEO || videoCodec == AV_CODEC_ID_MPEG1VIDEO || path.extension() == ".avi"
          ? AVRational{1, 25}
      : videoCodec == AV_CODEC_ID_GIF ? AVRational{1, 100}
                                      : AVRational{1, 1000};
  if (spec.video) {
    const AVCodec* codec = avcodec_find_encoder(videoCodec);
    video.reset(avcodec_alloc_context3(codec));
    video->width = spec.width;
    video->height = spec.height;
    video->pix_fmt = spec.pixelFormat;
    video->time_base = videoTimeBase;
    if (videoTimeBase.num == 1 && videoTimeBase.den == 25) video->framerate = {25, 1};
    video->qmin = video->qmax = 2;  // near-lossless, so content checks are meaningful
    if (out->oformat->flags & AVFMT_GLOBALHEADER) video->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av::check(avcodec_open2(video.get(), codec, nullptr), "test video encoder");
    videoStream = avformat_new_stream(out.get(), nullptr);
    av::check(avcodec_parameters_from_context(videoStream->codecpar, video.get()), "test video");
    videoStream->time_base = video->time_base;
    if (spec.rotation != 0) av::setStreamRotation(videoStream, spec.rotation);
  }
  if (spec.audio) {
    const AVCodec* codec = avcodec_find_encoder(spec.audioCodec);
    audio.reset(avcodec_alloc_context3(codec));
    audio->sample_rate = 48000;
    audio->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&audio->ch_layout, 1);
    audio->time_base = {1, 48000};
    audio->bit_rate = 64000;
    if (out->oformat->flags & AVFMT_GLOBALHEADER) audio->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av::check(avcodec_open2(audio.get(), codec, nullptr), "test audio encoder");
    audioStream = avformat_new_stream(out.get(), nullptr);
    av::check(avcodec_parameters_from_context(audioStream->codecpar, audio.get()), "test audio");
    audioStream->time_base = audio->time_base;
  }
  AVStream* subtitleStream = nullptr;
  if (spec.subtitleCodec != AV_CODEC_ID_NONE) {
    subtitleStream = avformat_new_stream(out.get(), nullptr);
    subtitleStream->codecpar->codec_type = AVMEDIA_TYPE_SUBTITLE;
    subtitleStream->codecpar->codec_id = spec.subtitleCodec;
    subtitleStream->time_base = {1, 1000};
  }
  av::check(avio_open(&out->pb, path.c_str(), AVIO_FLAG_WRITE), path.string());
  av::check(avformat_write_header(out.get(), nullptr), path.string());
  if (subtitleStream) {
    for (int cue = 0; cue < 3; ++cue) {
      std::string text = "cue " + std::to_string(cue);
      if (spec.subtitleCodec == AV_CODEC_ID_MOV_TEXT)  // 3GPP timed text: a 16-bit length, then the text
        text = std::string{char(0), char(text.size())} + text;
      av::PacketPtr packet = av::allocPacket();
      av::check(av_new_packet(packet.get(), int(text.size())), "test subtitle");
      std::copy(text.begin(), text.end(), packet->data);
      packet->pts = packet->dts = av_rescale_q(cue * 400, {1, 1000}, subtitleStream->time_base);
      packet->duration = av_rescale_q(300, {1, 1000}, subtitleStream->time_base);
      packet->stream_index = subtitleStream->index;
      av::check(av_interleaved_write_frame(out.get(), packet.get()), "test subtitle");
    }
  }
  av::SwsPtr convert;
  if (video && spec.pixelFormat != AV_PIX_FMT_YUV420P)
    convert.reset(sws_getContext(spec.width, spec.height, AV_PIX_FMT_YUV420P, spec.width, spec.height, spec.pixelFormat,
                                 SWS_POINT, nullptr, nullptr, nullptr));
  if (video) {
    for (size_t i = 0; i < spec.framesMs.size(); ++i) {
      av::FramePtr frame = av::allocFrame(AV_PIX_FMT_YUV420P, spec.width, spec.height);
      for (int y = 0; y < spec.height; ++y)
        for (int x = 0; x < spec.width; ++x) {
          const double u = x - double(i) * spec.motionX;
          const uint8_t luma =
              spec.motionX ? uint8_t(128 + 50 * std::sin(u * 0.31) * std::cos(y * 0.23) + 40 * std::sin((u + y) * 0.09))
                           : uint8_t(16 + (x * 3 + y * 2 + (spec.still ? 0 : int(i) * 7)) % 220);
          frame->data[0][y * frame->linesize[0] + x] = spec.cutAt >= 0 && int(i) >= spec.cutAt ? 255 - luma : luma;
        }
      for (int p = 1; p < 3; ++p)
        for (int y = 0; y < (spec.height + 1) / 2; ++y)
          for (int x = 0; x < (spec.width + 1) / 2; ++x)
            frame->data[p][y * frame->linesize[p] + x] = uint8_t(spec.motionX ? 128
                                                                 : p == 1     ? 90 + x * 2
                                                                              : 170 - y * 2);
      if (convert) {
        av::FramePtr converted = av::allocFrame(spec.pixelFormat, spec.width, spec.height);
        sws_scale(convert.get(), frame->data, frame->linesize, 0, spec.height, converted->data, converted->linesize);
        frame = std::move(converted);
      }
      frame->pts = av_rescale_q(spec.framesMs[i], {1, 1000}, videoTimeBase);
      av::check(avcodec_send_frame(video.get(), frame.get()), "test video");
      detail::drainTo(out.get(), video.get(), videoStream, av_rescale_q(40, {1, 1000}, videoTimeBase));
    }
    avcodec_send_frame(video.get(), nullptr);
    detail::drainTo(out.get(), video.get(), videoStream, av_rescale_q(40, {1, 1000}, videoTimeBase));
  }
  if (audio) {
    const int frameSize = audio->frame_size > 0 ? audio->frame_size : 1024;  // PCM takes any size
    const int64_t samples = std::llround(spec.audioSeconds * 48000), first = spec.audioStartMs * 48;
    for (int64_t start = 0; start < samples; start += frameSize) {
      av::FramePtr frame = av::allocFrame();
      frame->nb_samples = frameSize;
      frame->format = audio->sample_fmt;
      frame->sample_rate = 48000;
      av_channel_layout_copy(&frame->ch_layout, &audio->ch_layout);
      av::check(av_frame_get_buffer(frame.get(), 0), "test audio");
      for (int s = 0; s < frameSize; ++s) {
        const int64_t t = first + start + s - spec.toneFromMs * 48;  // samples since the tone's start
        const double v = t < 0 ? 0 : 0.3 * std::sin(2 * M_PI * 440 * t / 48000.0);
        if (audio->sample_fmt == AV_SAMPLE_FMT_S16 || audio->sample_fmt == AV_SAMPLE_FMT_S16P)
          reinterpret_cast<int16_t*>(frame->data[0])[s] = int16_t(std::lround(v * 32767));
        else if (audio->sample_fmt == AV_SAMPLE_FMT_S32 || audio->sample_fmt == AV_SAMPLE_FMT_S32P)
          reinterpret_cast<int32_t*>(frame->data[0])[s] = int32_t(std::lround(v * 2147483647.0));
        else
          reinterpret_cast<float*>(frame->data[0])[s] = float(v);
      }
      frame->pts = first + start;
      av::check(avcodec_send_frame(audio.get(), frame.get()), "test audio");
      detail::drainTo(out.get(), audio.get(), audioStream, frameSize);
    }
    avcodec_send_frame(audio.get(), nullptr);
    detail::drainTo(out.get(), audio.get(), audioStream, frameSize);
  }
  av::check(av_write_trailer(out.get()), path.string());
}

// What a finished file holds: frame timestamps in seconds, the rotation, audio packets (bytes + time).
struct VideoContents {
  int width = 0, height = 0;
  std::vector<double> frameTimes;
  double rotation = 0;
  std::vector<std::string> audioPackets;
  std::vector<double> audioTimes;
  double duration = 0;
  std::string videoCodec, pixelFormat, audioCodec, subtitleCodec;  // FFmpeg's names; empty when absent
  int subtitlePackets = 0;                                         // cues with text
};

// A file opened for decoding its best stream of one type.
struct OpenedStream {
  av::InputFormatPtr in;
  av::CodecContextPtr codec;
  int index = -1;
};
inline OpenedStream openBestStream(const std::filesystem::path& path, AVMediaType type) {
  OpenedStream s;
  AVFormatContext* raw = nullptr;
  av::check(avformat_open_input(&raw, path.c_str(), nullptr, nullptr), path.string());
  s.in.reset(raw);
  av::check(avformat_find_stream_info(s.in.get(), nullptr), path.string());
  const AVCodec* decoder = nullptr;
  s.index = av::check(av_find_best_stream(s.in.get(), type, -1, -1, &decoder, 0), path.string());
  s.codec.reset(avcodec_alloc_context3(decoder));
  avcodec_parameters_to_context(s.codec.get(), s.in->streams[s.index]->codecpar);
  s.codec->pkt_timebase = s.in->streams[s.index]->time_base;
  av::check(avcodec_open2(s.codec.get(), decoder, nullptr), path.string());
  return s;
}

// Decodes the stream's frames in order, calling `frame` for each until it returns false.
template <typename Fn>
void decodeFrames(OpenedStream& s, Fn&& frame) {
  av::PacketPtr packet = av::allocPacket();
  av::FramePtr decoded = av::allocFrame();
  bool more = true;
  auto receive = [&] {
    while (more && avcodec_receive_frame(s.codec.get(), decoded.get()) == 0) {
      more = frame(*decoded);
      av_frame_unref(decoded.get());
    }
  };
  while (more && av_read_frame(s.in.get(), packet.get()) >= 0) {
    if (packet->stream_index == s.index) {
      avcodec_send_packet(s.codec.get(), packet.get());
      receive();
    }
    av_packet_unref(packet.get());
  }
  avcodec_send_packet(s.codec.get(), nullptr);
  receive();
}

inline VideoContents readVideoContents(const std::filesystem::path& path) {
  VideoContents c;
  OpenedStream opened = openBestStream(path, AVMEDIA_TYPE_VIDEO);
  av::InputFormatPtr& in = opened.in;
  av::CodecContextPtr& codec = opened.codec;
  const int v = opened.index;
  c.width = codec->width;
  c.height = codec->height;
  c.rotation = av::streamRotation(in->streams[v]);
  c.duration = in->duration / 1e6;
  c.videoCodec = avcodec_get_name(codec->codec_id);
  c.pixelFormat = av_get_pix_fmt_name(codec->pix_fmt) ? av_get_pix_fmt_name(codec->pix_fmt) : "";
  for (unsigned i = 0; i < in->nb_streams; ++i) {
    const AVCodecParameters* par = in->streams[i]->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_AUDIO && c.audioCodec.empty()) c.audioCodec = avcodec_get_name(par->codec_id);
    if (par->codec_type == AVMEDIA_TYPE_SUBTITLE && c.subtitleCodec.empty())
      c.subtitleCodec = avcodec_get_name(par->codec_id);
  }
  av::PacketPtr packet = av::allocPacket();
  av::FramePtr frame = av::allocFrame();
  auto receive = [&] {
    while (avcodec_receive_frame(codec.get(), frame.get()) == 0) {
      c.frameTimes.push_back(frame->best_effort_timestamp * av_q2d(in->streams[v]->time_base));
      av_frame_unref(frame.get());
    }
  };
  while (av_read_frame(in.get(), packet.get()) >= 0) {
    const AVStream* s = in->streams[packet->stream_index];
    if (packet->stream_index == v) {
      avcodec_send_packet(codec.get(), packet.get());
      receive();
    } else if (s->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) {
      c.audioPackets.emplace_back(reinterpret_cast<const char*>(packet->data), packet->size);
      c.audioTimes.push_back(packet->pts * av_q2d(s->time_base));
    } else if (s->codecpar->codec_type == AVMEDIA_TYPE_SUBTITLE) {
      // Cues with text: MP4 fills the gaps between cues with empty samples (a zero 16-bit length).
      c.subtitlePackets += packet->size > (s->codecpar->codec_id == AV_CODEC_ID_MOV_TEXT ? 2 : 0);
    }
    av_packet_unref(packet.get());
  }
  avcodec_send_packet(codec.get(), nullptr);
  receive();
  return c;
}

// When the first audio sample louder than `threshold` plays, in seconds on the file's timeline (decoded, so
// encoder priming and the container's edit list are applied as a player applies them). -1 if never.
inline double audioOnsetSeconds(const std::filesystem::path& path, double threshold = 0.15) {
  OpenedStream s = openBestStream(path, AVMEDIA_TYPE_AUDIO);
  const double timeBase = av_q2d(s.in->streams[s.index]->time_base);
  double onset = -1;
  decodeFrames(s, [&](const AVFrame& frame) {
    SwrContext* raw = nullptr;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    av::check(swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_FLT, frame.sample_rate,
                                  const_cast<AVChannelLayout*>(&frame.ch_layout), AVSampleFormat(frame.format),
                                  frame.sample_rate, 0, nullptr),
              "test resampler");
    std::unique_ptr<SwrContext, void (*)(SwrContext*)> toFloat(raw, [](SwrContext* c) { swr_free(&c); });
    av::check(swr_init(raw), "test resampler");
    std::vector<float> samples(frame.nb_samples);
    uint8_t* planes[] = {reinterpret_cast<uint8_t*>(samples.data())};
    const int got =
        swr_convert(raw, planes, frame.nb_samples, const_cast<const uint8_t**>(frame.extended_data), frame.nb_samples);
    for (int i = 0; i < got; ++i)
      if (std::abs(samples[i]) > threshold) {
        onset = frame.best_effort_timestamp * timeBase + double(i) / frame.sample_rate;
        return false;
      }
    return true;
  });
  return onset;
}

// When the picture changes most from one frame to the next (a cut in an otherwise still clip), in seconds
// on the file's timeline: the frame with the largest mean absolute luma difference to the one before.
inline double biggestPictureChangeSeconds(const std::filesystem::path& path) {
  OpenedStream s = openBestStream(path, AVMEDIA_TYPE_VIDEO);
  const double timeBase = av_q2d(s.in->streams[s.index]->time_base);
  std::vector<uint8_t> previous;
  double biggest = -1, when = -1;
  decodeFrames(s, [&](const AVFrame& frame) {
    std::vector<uint8_t> luma;  // the first plane: luma for every YUV format the pipeline writes
    for (int y = 0; y < frame.height; ++y) {
      const uint8_t* row = frame.data[0] + y * frame.linesize[0];
      luma.insert(luma.end(), row, row + frame.width);
    }
    if (!previous.empty()) {
      double sum = 0;
      for (size_t i = 0; i < luma.size(); ++i) sum += std::abs(int(luma[i]) - int(previous[i]));
      if (sum > biggest) {
        biggest = sum;
        when = frame.best_effort_timestamp * timeBase;
      }
    }
    previous = std::move(luma);
    return true;
  });
  return when;
}

}  // namespace stylize::test
