#include "infer/video_encoder.h"

extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include <cstdio>

#include "data/error.h"
#include "data/files.h"

namespace fs = std::filesystem;

namespace stylize {

namespace {
// Whether the container takes the stream as it is. Asking the codec tables (avformat_query_codec) is not
// enough: mp4 lists FLAC, yet its muxer refuses it at avformat_write_header as experimental. So the muxer's
// own checks run on a scratch context with that one stream (init only: nothing is written).
bool muxerAccepts(const AVOutputFormat& container, const AVStream& stream) {
  if (avformat_query_codec(&container, stream.codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 1) return false;
  AVFormatContext* raw = nullptr;
  if (avformat_alloc_output_context2(&raw, &container, nullptr, nullptr) < 0 || !raw) return false;
  av::OutputFormatPtr scratch(raw);
  AVStream* copy = avformat_new_stream(scratch.get(), nullptr);
  if (!copy || avcodec_parameters_copy(copy->codecpar, stream.codecpar) < 0) return false;
  copy->codecpar->codec_tag = 0;
  copy->time_base = stream.time_base;
  // Some muxers look at their output while initialising: a memory buffer stands in for the file.
  if (avio_open_dyn_buf(&scratch->pb) < 0) return false;
  const bool accepted = avformat_init_output(scratch.get(), nullptr) >= 0;
  uint8_t* bytes = nullptr;
  avio_close_dyn_buf(scratch->pb, &bytes);
  av_free(bytes);
  scratch->pb = nullptr;
  return accepted;
}

const AVCodec* chooseEncoder(const AVOutputFormat& container, const WriteOptions& options, const fs::path& path) {
  std::string name = options.codec;
  if (name.empty()) {
    const std::string format = container.name;
    // H.264 wherever the container holds it (also MPEG-TS, AVI, FLV, whose own defaults are older codecs
    // that refuse variable frame timing); WebM holds only VP8/VP9/AV1.
    // MPEG-TS has no codec table to ask (the answer is "unknown"), but its default is MPEG-2.
    const int h264 = avformat_query_codec(&container, AV_CODEC_ID_H264, FF_COMPLIANCE_NORMAL);
    const AVCodecID old = container.video_codec;
    const bool olderDefault = old == AV_CODEC_ID_MPEG1VIDEO || old == AV_CODEC_ID_MPEG2VIDEO ||
                              old == AV_CODEC_ID_MPEG4 || old == AV_CODEC_ID_FLV1;
    if (format == "webm")
      name = "libvpx-vp9";
    else if ((h264 == 1 || (h264 < 0 && olderDefault)) && avcodec_find_encoder_by_name("libx264"))
      name = "libx264";
  }
  const AVCodec* codec =
      name.empty() ? avcodec_find_encoder(container.video_codec) : avcodec_find_encoder_by_name(name.c_str());
  if (!codec) throw Error(path.string() + ": this FFmpeg has no encoder '" + (name.empty() ? "?" : name) + "'");
  if (codec->type != AVMEDIA_TYPE_VIDEO) throw Error("--codec " + name + ": not a video encoder");
  if (avformat_query_codec(&container, codec->id, FF_COMPLIANCE_NORMAL) == 0)  // < 0: unknown, the muxer decides
    throw Error(path.string() + ": a " + container.name + " file cannot hold " + codec->name + " video");
  return codec;
}

AVPixelFormat choosePixelFormat(const AVCodec& codec, const WriteOptions& options) {
  const AVPixelFormat wanted = av_get_pix_fmt(options.pixFmt.empty() ? "yuv420p" : options.pixFmt.c_str());
  if (wanted == AV_PIX_FMT_NONE) throw Error("--pix-fmt " + options.pixFmt + ": unknown pixel format");
  if (!codec.pix_fmts) return wanted;
  for (const AVPixelFormat* f = codec.pix_fmts; *f != AV_PIX_FMT_NONE; ++f)
    if (*f == wanted) return wanted;
  if (!options.pixFmt.empty())
    throw Error("--pix-fmt " + options.pixFmt + ": the " + codec.name + " encoder does not take it");
  return codec.pix_fmts[0];  // e.g. GIF's palette formats
}

// Sets a private codec option; a flag the user gave explicitly must apply, a default of ours may not.
void setOption(AVCodecContext& codec, const char* key, const std::string& value, bool required) {
  if (av_opt_set(codec.priv_data, key, value.c_str(), 0) < 0 && required)
    throw Error(std::string("--") + key + " " + value + ": the " + codec.codec->name + " encoder does not take it");
}

}  // namespace

VideoEncoder::VideoEncoder(const fs::path& path, const VideoDecoder& source, const WriteOptions& options)
    : path_(path), temporary_(temporarySibling(path)) {
  checkWritable(path);
  AVFormatContext* raw = nullptr;
  avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str());
  if (!raw)
    throw Error(path.string() + ": unknown video container '" + path.extension().string() +
                "' (use .mp4, .mkv, .mov or .webm)");
  format_.reset(raw);
  const VideoInfo& info = source.info();
  const AVStream* inVideo = source.format()->streams[source.videoStream()];

  const AVCodec* encoder = chooseEncoder(*format_->oformat, options, path);
  codec_.reset(avcodec_alloc_context3(encoder));
  if (!codec_) throw Error("out of memory opening the encoder");
  const AVPixelFormat pixFmt = choosePixelFormat(*encoder, options);
  int wShift = 0, hShift = 0;
  av_pix_fmt_get_chroma_sub_sample(pixFmt, &wShift, &hShift);
  codec_->width = info.width & ~((1 << wShift) - 1);
  codec_->height = info.height & ~((1 << hShift) - 1);
  if (codec_->width <= 0 || codec_->height <= 0) throw Error(path.string() + ": the video is too small to encode");
  codec_->pix_fmt = pixFmt;
  codec_->time_base = info.timeBase;
  codec_->framerate = info.frameRate;
  codec_->sample_aspect_ratio = info.sampleAspect;
  codec_->thread_count = 0;
  // Tag the colours as we convert them, so players decode the stylized frames with the same matrix.
  const AVColorSpace tagged = av::colorSpaceOf(inVideo->codecpar->color_space);
  const AVColorSpace space =
      tagged != AVCOL_SPC_UNSPECIFIED ? tagged : (info.height >= 720 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M);
  const bool yuv = !(av_pix_fmt_desc_get(pixFmt)->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL));
  if (yuv) {
    codec_->colorspace = space;
    codec_->color_range = AVCOL_RANGE_MPEG;
    codec_->color_primaries = av::colorPrimariesOf(inVideo->codecpar->color_primaries);
    codec_->color_trc = av::colorTransferOf(inVideo->codecpar->color_trc);
  }
  if (format_->oformat->flags & AVFMT_GLOBALHEADER) codec_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  const std::string name = encoder->name;
  if (name == "libx264") {
    setOption(*codec_, "crf", std::to_string(options.crf >= 0 ? options.crf : 18), options.crf >= 0);
    setOption(*codec_, "preset", options.preset.empty() ? "medium" : options.preset, !options.preset.empty());
  } else if (name == "libvpx-vp9") {
    codec_->bit_rate = 0;  // constant quality
    setOption(*codec_, "crf", std::to_string(options.crf >= 0 ? options.crf : 32), options.crf >= 0);
    setOption(*codec_, "row-mt", "1", false);
    setOption(*codec_, "cpu-used", "4", false);
  } else {
    if (options.crf >= 0) setOption(*codec_, "crf", std::to_string(options.crf), true);
    if (!options.preset.empty()) setOption(*codec_, "preset", options.preset, true);
  }
  if (const int r = avcodec_open2(codec_.get(), encoder, nullptr); r < 0)
    throw Error(path.string() + ": cannot open the " + name + " encoder: " + av::errorString(r));

  AVStream* outVideo = avformat_new_stream(format_.get(), nullptr);
  if (!outVideo) throw Error("out of memory creating the video stream");
  av::check(avcodec_parameters_from_context(outVideo->codecpar, codec_.get()), path.string());
  outVideo->time_base = codec_->time_base;
  outVideo->avg_frame_rate = info.frameRate;
  outVideo->sample_aspect_ratio = info.sampleAspect;
  outVideo->disposition = inVideo->disposition;
  av_dict_copy(&outVideo->metadata, inVideo->metadata, 0);
  av::copyDisplayMatrix(inVideo, outVideo);
  videoOut_ = outVideo->index;

  // Audio and subtitles go through untouched when the container can hold them.
  const AVFormatContext* in = source.format();
  streamMap_.assign(in->nb_streams, -1);
  for (unsigned i = 0; i < in->nb_streams; ++i) {
    const AVStream* s = in->streams[i];
    sourceTimeBases_.push_back(s->time_base);
    const AVMediaType type = s->codecpar->codec_type;
    if (int(i) == source.videoStream() || (type != AVMEDIA_TYPE_AUDIO && type != AVMEDIA_TYPE_SUBTITLE)) continue;
    const char* codecName = avcodec_get_name(s->codecpar->codec_id);
    if (!muxerAccepts(*format_->oformat, *s)) {
      if (type == AVMEDIA_TYPE_AUDIO) {
        try {
          auto transcoder = std::make_unique<AudioTranscoder>(*s, *format_);
          transcodedNames_.push_back("stream " + std::to_string(i) + " (" + transcoder->description() + ")");
          transcoders_[int(i)] = std::move(transcoder);
          continue;
        } catch (const Error& e) {  // no suitable encoder in this FFmpeg: left out, said below with the reason
          dropped_.push_back("stream " + std::to_string(i) + " (audio " + codecName + ": " + e.what() + ")");
          continue;
        }
      }
      dropped_.push_back("stream " + std::to_string(i) + " (" + av_get_media_type_string(type) + " " + codecName + ")");
      continue;
    }
    AVStream* out = avformat_new_stream(format_.get(), nullptr);
    if (!out) throw Error("out of memory creating a stream");
    av::check(avcodec_parameters_copy(out->codecpar, s->codecpar), path.string());
    out->codecpar->codec_tag = 0;  // let the muxer pick its own tag for the codec
    out->time_base = s->time_base;
    out->disposition = s->disposition;
    av_dict_copy(&out->metadata, s->metadata, 0);
    streamMap_[i] = out->index;
  }
  av_dict_copy(&format_->metadata, in->metadata, 0);

  // Muxers that rewrite the file at the end (mp4 +faststart) reopen it by this name.
  av_freep(&format_->url);
  format_->url = av_strdup(temporary_.c_str());
  if (!(format_->oformat->flags & AVFMT_NOFILE)) {
    if (const int r = avio_open(&format_->pb, temporary_.c_str(), AVIO_FLAG_WRITE); r < 0)
      throw Error(path.string() + ": cannot create " + temporary_.string() + ": " + av::errorString(r));
  }
  AVDictionary* muxerOptions = nullptr;
  const std::string container = format_->oformat->name;
  if (container.find("mp4") != std::string::npos || container.find("mov") != std::string::npos)
    av_dict_set(&muxerOptions, "movflags", "+faststart", 0);  // playable while downloading
  const int header = avformat_write_header(format_.get(), &muxerOptions);
  av_dict_free(&muxerOptions);
  if (header < 0) {
    std::remove(temporary_.c_str());
    throw Error(path.string() + ": cannot start writing: " + av::errorString(header));
  }

  sourceTimeBase_ = info.timeBase;
  if (info.frameRate.num > 0)
    frameTicks_ = std::max<int64_t>(1, av_rescale_q(1, av_inv_q(info.frameRate), info.timeBase));
  converted_ = av::allocFrame(pixFmt, codec_->width, codec_->height);
  packet_ = av::allocPacket();
  sws_.reset(sws_getContext(codec_->width, codec_->height, AV_PIX_FMT_RGB24, codec_->width, codec_->height, pixFmt,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
  if (!sws_) throw Error(path.string() + ": cannot convert RGB to " + av_get_pix_fmt_name(pixFmt));
  if (yuv)
    sws_setColorspaceDetails(sws_.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1,
                             sws_getCoefficients(av::swsColorspace(space, info.height)), 0, 0, 1 << 16, 1 << 16);
}

VideoEncoder::~VideoEncoder() {
  if (finished_) return;
  format_.reset();  // closes the file before removing it
  std::error_code ec;
  fs::remove(temporary_, ec);
}

std::optional<YuvFormat> VideoEncoder::yuvFormat() const {
  const AVPixelFormat format = codec_->pix_fmt;
  if (format != AV_PIX_FMT_YUV420P && format != AV_PIX_FMT_YUV420P10LE) return std::nullopt;
  AVFrame tags{};  // the matrix and range this encoder was set up with, read as a frame's would be
  tags.format = format;
  tags.height = codec_->height;
  tags.colorspace = codec_->colorspace;
  tags.color_range = AVCOL_RANGE_MPEG;  // swscale above writes limited range
  return av::frameYuvFormat(tags);
}

void VideoEncoder::write(const AVFrame& rgb) {
  av::check(av_frame_make_writable(converted_.get()), "encoder frame");
  if (rgb.format == codec_->pix_fmt) {
    if (rgb.width != codec_->width || rgb.height != codec_->height)
      throw Error(path_.string() + ": a frame of the encoder's format must be " + std::to_string(codec_->width) + "x" +
                  std::to_string(codec_->height));
    av::check(av_frame_copy(converted_.get(), &rgb), "encoder frame");
  } else {
    // Reading only the top-left width()×height() of the RGB frame is what drops an odd last row/column.
    sws_scale(sws_.get(), rgb.data, rgb.linesize, 0, codec_->height, converted_->data, converted_->linesize);
  }
  int64_t pts = rgb.pts == AV_NOPTS_VALUE ? (lastPts_ == AV_NOPTS_VALUE ? 0 : lastPts_ + frameTicks_) : rgb.pts;
  if (lastPts_ != AV_NOPTS_VALUE && pts <= lastPts_) pts = lastPts_ + 1;  // encoders need strictly increasing pts
  lastPts_ = pts;
  converted_->pts = pts;
  const int64_t duration = av::frameDuration(rgb);
  durations_[pts] = duration > 0 ? duration : frameTicks_;
  av::check(avcodec_send_frame(codec_.get(), converted_.get()), path_.string() + ": encoding");
  drain(false);
  ++framesWritten_;
}

void VideoEncoder::drain(bool flush) {
  for (;;) {
    const int r = avcodec_receive_packet(codec_.get(), packet_.get());
    if (r == AVERROR(EAGAIN) || (flush && r == AVERROR_EOF)) return;
    av::check(r, path_.string() + ": encoding");
    // mp4 takes the last frame's display time from its packet; without one the edit list drops it.
    if (const auto d = durations_.find(packet_->pts); d != durations_.end()) {
      if (packet_->duration <= 0) packet_->duration = d->second;
      durations_.erase(d);
    }
    av_packet_rescale_ts(packet_.get(), codec_->time_base, format_->streams[videoOut_]->time_base);
    packet_->stream_index = videoOut_;
    av::check(av_interleaved_write_frame(format_.get(), packet_.get()), path_.string() + ": writing");
  }
}

void VideoEncoder::copy(AVPacket& packet) {
  if (const auto t = transcoders_.find(packet.stream_index); t != transcoders_.end()) {
    t->second->write(packet);
    ++packetsCopied_;
    return;
  }
  if (packet.stream_index < 0 || packet.stream_index >= int(streamMap_.size())) return;
  const int out = streamMap_[packet.stream_index];
  if (out < 0) return;
  av_packet_rescale_ts(&packet, sourceTimeBases_[packet.stream_index], format_->streams[out]->time_base);
  packet.stream_index = out;
  packet.pos = -1;
  av::check(av_interleaved_write_frame(format_.get(), &packet), path_.string() + ": writing");
  ++packetsCopied_;
}

void VideoEncoder::finish() {
  if (framesWritten_ == 0) throw Error(path_.string() + ": no frames to write; nothing was written");
  av::check(avcodec_send_frame(codec_.get(), nullptr), path_.string() + ": flushing the encoder");
  drain(true);
  for (auto& [index, transcoder] : transcoders_) transcoder->finish();
  av::check(av_write_trailer(format_.get()), path_.string() + ": finishing");
  if (!(format_->oformat->flags & AVFMT_NOFILE)) av::check(avio_closep(&format_->pb), path_.string() + ": closing");
  std::error_code ec;
  fs::rename(temporary_, path_, ec);
  if (ec) throw Error(path_.string() + ": cannot move the finished video into place: " + ec.message());
  finished_ = true;
}

}  // namespace stylize
