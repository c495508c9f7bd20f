#include "infer/video_pipeline.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "data/error.h"
#include "infer/bounded_queue.h"
#include "infer/hw_decode.h"
#include "infer/stabilizer.h"
#include "infer/yuv.h"

namespace stylize {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

torch::Tensor resizeFrames(const torch::Tensor& images, int height, int width) {
  if (images.size(2) == height && images.size(3) == width) return images;
  namespace F = torch::nn::functional;
  // Antialiased bilinear: no aliasing when shrinking 4K to 720p, smooth when scaling the result back.
  return F::interpolate(images, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{height, width})
                                    .mode(torch::kBilinear)
                                    .align_corners(false)
                                    .antialias(true))
      .clamp_(0, 1);
}

torch::Tensor framesToTensor(const std::vector<const AVFrame*>& frames, const torch::Device& device) {
  std::vector<torch::Tensor> items;
  items.reserve(frames.size());
  for (const AVFrame* f : frames) {
    if (f->format == AV_PIX_FMT_RGB24) {
      items.push_back(torch::from_blob(f->data[0], {f->height, f->width, 3}, {f->linesize[0], 3, 1}, torch::kUInt8)
                          .to(device)  // bytes cross to the device, not floats: a quarter of the transfer
                          .permute({2, 0, 1})
                          .to(torch::kFloat32)
                          .div_(255));
    } else if (std::optional<YuvPlanes> planes = av::framePlanes(*f, device.is_cuda() ? device.index() : 0)) {
      // The planes cross as they are (1.5 bytes a pixel at 8 bits) and become RGB on the device.
      const auto moved = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
      items.push_back(
          yuvToRgb({moved(planes->y), moved(planes->u), moved(planes->v), moved(planes->uv)}, av::frameYuvFormat(*f)));
    } else {
      throw Error(
          std::string("framesToTensor: cannot convert ") +
          (av_get_pix_fmt_name(AVPixelFormat(f->format)) ? av_get_pix_fmt_name(AVPixelFormat(f->format)) : "?") +
          " frames");
    }
  }
  return torch::stack(items).contiguous();
}

torch::Tensor imageToBytes(const torch::Tensor& image) {
  return image.detach().mul(255).round_().clamp_(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous().cpu();
}

av::FramePtr tensorToFrame(const torch::Tensor& image) {
  const torch::Tensor bytes = imageToBytes(image);
  const int height = static_cast<int>(bytes.size(0)), width = static_cast<int>(bytes.size(1));
  av::FramePtr frame = av::allocFrame(AV_PIX_FMT_RGB24, width, height);
  const uint8_t* src = bytes.data_ptr<uint8_t>();
  for (int y = 0; y < height; ++y) std::memcpy(frame->data[0] + y * frame->linesize[0], src + y * width * 3, width * 3);
  return frame;
}

std::pair<int, int> processingSize(int width, int height, int size, int maxSize) {
  const int longSide = std::max(width, height);
  double scale = 1;
  if (size > 0)
    scale = double(size) / longSide;
  else if (maxSize > 0 && longSide > maxSize)
    scale = double(maxSize) / longSide;
  if (scale == 1) return {width, height};
  return {std::max(1, int(std::lround(width * scale))), std::max(1, int(std::lround(height * scale)))};
}

VideoReport stylizeVideo(Stylizer& stylizer, const VideoJob& job, const VideoCallbacks& callbacks) {
  const auto start = Clock::now();
  if (job.batch < 1) throw Error("--batch must be at least 1");
  const bool tensorColor = job.colorConversion == ColorConversion::kTensor ||
                           (job.colorConversion == ColorConversion::kAuto && stylizer.device().is_cuda());
  ReadOptions read = job.read;
  read.keepYuv = read.keepYuv || tensorColor;
  VideoDecoder decoder(job.input, read);
  VideoEncoder encoder(job.output, decoder, job.write);
  const std::optional<YuvFormat> encoderYuv = tensorColor ? encoder.yuvFormat() : std::nullopt;
  const VideoInfo& info = decoder.info();
  // Plain variables, not a structured binding: lambdas below capture them (clang before 16 cannot).
  const auto processSize = processingSize(info.width, info.height, job.size, job.maxSize);
  const int processWidth = processSize.first, processHeight = processSize.second;
  if (callbacks.started) callbacks.started(info);

  VideoReport report;
  report.inputWidth = info.width;
  report.inputHeight = info.height;
  report.width = encoder.width();
  report.height = encoder.height();
  report.inferenceWidth = processWidth;
  report.inferenceHeight = processHeight;
  report.codec = encoder.codecName();

  // Capacity: enough for the inference stage to always find a full batch waiting, no more.
  const size_t capacity = 2 * job.batch + 4;
  BoundedQueue<VideoDecoder::Item> decoded(capacity), stylized(capacity);
  std::atomic<bool> stopping{false};
  std::exception_ptr decodeError, encodeError;
  auto stopRequested = [&] { return stopping.load() || (callbacks.stop && callbacks.stop->load()); };

  std::thread decodeThread([&] {
    try {
      VideoDecoder::Item item;
      while (!stopRequested() && decoder.next(item))
        if (!decoded.push(std::move(item))) break;
    } catch (...) {
      decodeError = std::current_exception();
    }
    decoded.close();
  });
  std::thread encodeThread([&] {
    try {
      while (auto item = stylized.pop()) {
        if (item->frame)
          encoder.write(*item->frame);
        else
          encoder.copy(*item->packet);
      }
    } catch (...) {
      // Every queue is abandoned, so that no stage waits for a consumer that has gone: the inference loop
      // may be blocked pushing into a full `stylized`.
      encodeError = std::current_exception();
      stopping = true;
      decoded.abandon();
      stylized.abandon();
    }
  });
  auto joinAll = [&] {
    if (decodeThread.joinable()) decodeThread.join();
    if (encodeThread.joinable()) encodeThread.join();
  };

  std::unique_ptr<FrameStabilizer> stabilizer;
  const VideoDefaults steady =
      chooseStabilize(job.stabilize, job.stabilizeGate, videoDefaults(stylizer.info(), stylizer.name()));
  if (steady.stabilize > 0) stabilizer = std::make_unique<FrameStabilizer>(steady.stabilize, steady.stabilizeGate);

  VideoProgress progress;
  progress.totalFrames = info.frames;
  progress.duration = info.duration;
  std::vector<VideoDecoder::Item> batch;
  auto stylizeBatch = [&] {
    if (batch.empty()) return;
    std::vector<const AVFrame*> frames;
    for (const auto& item : batch) frames.push_back(item.frame.get());
    const auto t0 = Clock::now();
    const torch::Tensor inputs = framesToTensor(frames, stylizer.device());
    // Stays on the model's device: what crosses back is bytes (RGB24 or YUV planes), not floats.
    torch::Tensor out =
        resizeFrames(stylizer(resizeFrames(inputs, processHeight, processWidth), job.stylize), info.height, info.width);
    if (stabilizer) {
      out = out.cpu();
      const torch::Tensor cpuInputs = inputs.cpu();
      std::vector<torch::Tensor> steady;  // `out` is an inference tensor: build a new one
      for (int64_t i = 0; i < out.size(0); ++i) steady.push_back((*stabilizer)(cpuInputs[i], out[i]));
      out = torch::stack(steady);
    }
    report.inferenceSeconds += secondsSince(t0);
    for (size_t i = 0; i < batch.size(); ++i) {
      av::FramePtr frame =
          encoderYuv ? av::planesToFrame(
                           rgbToYuv(out[i].narrow(1, 0, encoder.height()).narrow(2, 0, encoder.width()), *encoderYuv),
                           encoderYuv->bits)
                     : tensorToFrame(out[i]);
      frame->pts = batch[i].frame->pts;
      av::setFrameDuration(*frame, av::frameDuration(*batch[i].frame));
      if (callbacks.frame) {
        // The window and stills take RGB24: converted here only when someone looks.
        const bool rgb = batch[i].frame->format == AV_PIX_FMT_RGB24 && frame->format == AV_PIX_FMT_RGB24;
        const bool go = rgb ? callbacks.frame(*batch[i].frame, *frame)
                            : callbacks.frame(*tensorToFrame(inputs[i]), *tensorToFrame(out[i]));
        if (!go) stopping = true;
      }
      if (frame->pts != AV_NOPTS_VALUE) progress.position = frame->pts * av_q2d(info.timeBase);
      if (!stylized.push({std::move(frame), nullptr})) break;
      ++progress.frames;
    }
    // NVDEC frames go back to the decoder's pool when `batch` is cleared: the kernels that read them must
    // be done (the copies above already waited; this says so where it matters).
    for (const auto& item : batch)
      if (item.frame->format == AV_PIX_FMT_CUDA) {
        finishReadingCudaFrames();
        break;
      }
    batch.clear();
    if (callbacks.progress) callbacks.progress(progress);
  };

  try {
    while (auto item = decoded.pop()) {
      if (item->packet) {
        if (!stylized.push(std::move(*item))) break;
        continue;
      }
      batch.push_back(std::move(*item));
      if (batch.size() >= size_t(job.batch)) stylizeBatch();
    }
    stylizeBatch();
  } catch (...) {
    stopping = true;
    decoded.abandon();
    stylized.abandon();
    joinAll();
    throw;
  }
  stylized.close();
  joinAll();
  if (encodeError) std::rethrow_exception(encodeError);
  if (decodeError) std::rethrow_exception(decodeError);

  report.interrupted = stopRequested();
  if (report.interrupted && encoder.framesWritten() == 0) return report;  // nothing to keep: no file at all
  encoder.finish();
  report.frames = encoder.framesWritten();
  report.copiedPackets = encoder.packetsCopied();
  report.droppedStreams = encoder.droppedStreams();
  report.transcodedStreams = encoder.transcodedStreams();
  report.skippedPackets = decoder.skippedPackets();
  report.endError = decoder.endError();
  report.seconds = secondsSince(start);
  return report;
}

}  // namespace stylize
