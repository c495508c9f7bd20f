#include "infer/audio_transcoder.h"

#include <algorithm>

#include "data/error.h"

namespace stylize {

AudioTranscoder::AudioTranscoder(const AVStream& source, AVFormatContext& output)
    : output_(output), sourceTimeBase_(source.time_base) {
  const AVCodec* decoder = avcodec_find_decoder(source.codecpar->codec_id);
  if (!decoder) throw Error(std::string("no decoder for ") + avcodec_get_name(source.codecpar->codec_id));
  const AVCodecID target = output.oformat->audio_codec;
  // FFmpeg's own Opus encoder is experimental: prefer libopus.
  const AVCodec* encoder = target == AV_CODEC_ID_OPUS ? avcodec_find_encoder_by_name("libopus") : nullptr;
  if (!encoder && target != AV_CODEC_ID_NONE) encoder = avcodec_find_encoder(target);
  if (!encoder) throw Error(std::string("no audio encoder for ") + output.oformat->name);

  decoder_.reset(avcodec_alloc_context3(decoder));
  av::check(avcodec_parameters_to_context(decoder_.get(), source.codecpar), "audio decoder");
  decoder_->pkt_timebase = source.time_base;
  av::check(avcodec_open2(decoder_.get(), decoder, nullptr), "audio decoder");
  // Matroska and WAV often say only how many channels there are: encoders and the resampler want a layout.
  if (decoder_->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
    const int channels = decoder_->ch_layout.nb_channels;
    av_channel_layout_uninit(&decoder_->ch_layout);
    av_channel_layout_default(&decoder_->ch_layout, channels);
  }

  encoder_.reset(avcodec_alloc_context3(encoder));
  int rate = decoder_->sample_rate;
  if (encoder->supported_samplerates) {  // the smallest supported rate not below the source's, else the largest
    int above = 0, largest = 0;
    for (const int* r = encoder->supported_samplerates; *r; ++r) {
      largest = std::max(largest, *r);
      if (*r >= rate && (!above || *r < above)) above = *r;
    }
    rate = above ? above : largest;
  }
  encoder_->sample_rate = rate;
  encoder_->sample_fmt = encoder->sample_fmts ? encoder->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
  av::check(av_channel_layout_copy(&encoder_->ch_layout, &decoder_->ch_layout), "audio channels");
  if (encoder_->ch_layout.nb_channels > 2) av_channel_layout_default(&encoder_->ch_layout, 2);
  encoder_->bit_rate = 128000;
  encoder_->time_base = {1, rate};
  if (output.oformat->flags & AVFMT_GLOBALHEADER) encoder_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  av::check(avcodec_open2(encoder_.get(), encoder, nullptr), std::string("audio encoder ") + encoder->name);

  av::check(swr_alloc_set_opts2(&resampler_, &encoder_->ch_layout, encoder_->sample_fmt, rate, &decoder_->ch_layout,
                                decoder_->sample_fmt, decoder_->sample_rate, 0, nullptr),
            "audio resampler");
  av::check(swr_init(resampler_), "audio resampler");
  fifo_ = av_audio_fifo_alloc(encoder_->sample_fmt, encoder_->ch_layout.nb_channels, 4096);
  if (!fifo_) throw Error("out of memory for the audio buffer");

  stream_ = avformat_new_stream(&output, nullptr);
  if (!stream_) throw Error("out of memory creating the audio stream");
  av::check(avcodec_parameters_from_context(stream_->codecpar, encoder_.get()), "audio stream");
  stream_->time_base = encoder_->time_base;
  stream_->disposition = source.disposition;
  av_dict_copy(&stream_->metadata, source.metadata, 0);
  decoded_ = av::allocFrame();
  packet_ = av::allocPacket();
#if LIBAVFORMAT_VERSION_INT < AV_VERSION_INT(59, 31, 100)
  // Matroska's CodecDelay (Opus' 6.5 ms pre-skip) is subtracted from the audio's timestamps by every reader.
  // libavformat before 59.31 (FFmpeg 5.1, Debian 12) writes CodecDelay but does not add it to the
  // timestamps: the encoder's first packet is then negative, the muxer shifts every stream forward to
  // zero, and the picture plays 7 ms behind the sound (`ffmpeg` itself has this bug). Later versions add
  // the delay themselves, which is what this does for the older ones.
  const std::string muxer = output.oformat->name;
  if (encoder_->codec_id == AV_CODEC_ID_OPUS && encoder_->initial_padding > 0 &&
      (muxer.find("matroska") != std::string::npos || muxer == "webm"))
    codecDelay_ = av_rescale_q(encoder_->initial_padding, {1, 48000}, encoder_->time_base);
#endif
}

AudioTranscoder::~AudioTranscoder() {
  swr_free(&resampler_);
  if (fifo_) av_audio_fifo_free(fifo_);
}

std::string AudioTranscoder::description() const {
  return std::string(decoder_->codec->name) + " → " + encoder_->codec->name;
}

void AudioTranscoder::write(const AVPacket& packet) {
  if (firstPacketPts_ == AV_NOPTS_VALUE) firstPacketPts_ = packet.pts;
  if (avcodec_send_packet(decoder_.get(), &packet) < 0) return;  // a corrupt packet: a short gap, not a failure
  decodeFrames();
  encodeFrom(false);
}

void AudioTranscoder::decodeFrames() {
  while (avcodec_receive_frame(decoder_.get(), decoded_.get()) == 0) {
    // The audio stays where it was in time: the first decoded sample's time, not the first packet's. They
    // differ by the source encoder's priming (AAC: 1,024 samples, 21 ms), which the decoder drops as the
    // container says; timing from the packet would move the sound that much ahead of the picture.
    if (nextPts_ == AV_NOPTS_VALUE) {
      const int64_t first =
          decoded_->best_effort_timestamp != AV_NOPTS_VALUE ? decoded_->best_effort_timestamp : firstPacketPts_;
      if (first != AV_NOPTS_VALUE) nextPts_ = av_rescale_q(first, sourceTimeBase_, encoder_->time_base);
    }
    const int capacity = swr_get_out_samples(resampler_, decoded_->nb_samples);
    av::check(av_audio_fifo_realloc(fifo_, av_audio_fifo_size(fifo_) + capacity), "audio buffer");
    uint8_t** planes = nullptr;
    av::check(av_samples_alloc_array_and_samples(&planes, nullptr, encoder_->ch_layout.nb_channels, capacity,
                                                 encoder_->sample_fmt, 0),
              "audio buffer");
    const int got = swr_convert(resampler_, planes, capacity, const_cast<const uint8_t**>(decoded_->extended_data),
                                decoded_->nb_samples);
    if (got > 0) av_audio_fifo_write(fifo_, reinterpret_cast<void**>(planes), got);
    av_freep(&planes[0]);
    av_freep(&planes);
    av_frame_unref(decoded_.get());
  }
}

void AudioTranscoder::encodeFrom(bool flush) {
  const int frameSize = encoder_->frame_size > 0 ? encoder_->frame_size : 1024;
  while (av_audio_fifo_size(fifo_) >= frameSize || (flush && av_audio_fifo_size(fifo_) > 0)) {
    const int available = std::min(frameSize, av_audio_fifo_size(fifo_));
    const bool variable = encoder_->codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE;
    av::FramePtr frame = av::allocFrame();
    frame->nb_samples = variable ? available : frameSize;  // the last frame is padded with silence
    frame->format = encoder_->sample_fmt;
    frame->sample_rate = encoder_->sample_rate;
    av::check(av_channel_layout_copy(&frame->ch_layout, &encoder_->ch_layout), "audio frame");
    av::check(av_frame_get_buffer(frame.get(), 0), "audio frame");
    av_samples_set_silence(frame->extended_data, 0, frame->nb_samples, encoder_->ch_layout.nb_channels,
                           encoder_->sample_fmt);
    av_audio_fifo_read(fifo_, reinterpret_cast<void**>(frame->extended_data), available);
    frame->pts = nextPts_ == AV_NOPTS_VALUE ? 0 : nextPts_;
    nextPts_ = frame->pts + frame->nb_samples;
    av::check(avcodec_send_frame(encoder_.get(), frame.get()), "audio encoding");
    drain();
  }
}

void AudioTranscoder::drain() {
  while (avcodec_receive_packet(encoder_.get(), packet_.get()) == 0) {
    if (packet_->pts != AV_NOPTS_VALUE) packet_->pts += codecDelay_;
    if (packet_->dts != AV_NOPTS_VALUE) packet_->dts += codecDelay_;
    av_packet_rescale_ts(packet_.get(), encoder_->time_base, stream_->time_base);
    packet_->stream_index = stream_->index;
    av::check(av_interleaved_write_frame(&output_, packet_.get()), "writing audio");
  }
}

void AudioTranscoder::finish() {
  avcodec_send_packet(decoder_.get(), nullptr);
  decodeFrames();
  encodeFrom(true);
  avcodec_send_frame(encoder_.get(), nullptr);
  drain();
}

}  // namespace stylize
