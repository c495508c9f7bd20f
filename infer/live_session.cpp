#include "infer/live_session.h"

#include <SDL2/SDL.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <future>

#include "data/error.h"
#include "data/image.h"
#include "infer/overlay_text.h"
#include "infer/video_pipeline.h"

namespace stylize {

namespace {

using Clock = std::chrono::steady_clock;

// [H, W, 3] uint8 copy of an RGB24 frame.
torch::Tensor frameBytes(const AVFrame& frame) {
  return torch::from_blob(frame.data[0], {frame.height, frame.width, 3}, {frame.linesize[0], 3, 1}, torch::kUInt8)
      .clone();
}

const char* viewName(LiveView view) {
  switch (view) {
    case LiveView::kOriginal:
      return "original";
    case LiveView::kSideBySide:
      return "side by side";
    default:
      return "stylized";
  }
}

}  // namespace

LiveSession::LiveSession(LiveOptions options) : options_(std::move(options)) {
  if (options_.models.empty()) throw Error("stylize live: at least one --model is needed");
  if (options_.models.size() > 9) throw Error("stylize live: at most 9 models (keys 1-9)");
  strength_ = options_.stylize.strength;
  options_.read.lowDelay = true;
  // All LibTorch work happens on the inference thread, loading the models included (see compose()).
  std::promise<void> loaded;
  std::future<void> ready = loaded.get_future();
  inference_ = std::thread([this, &loaded] {
    try {
      for (const auto& path : options_.models) {
        stylizers_.push_back(std::make_unique<Stylizer>(path, options_.device, options_.precision));
        names_.push_back(stylizers_.back()->name());
      }
    } catch (...) {
      loaded.set_exception(std::current_exception());
      return;
    }
    loaded.set_value();
    inferenceLoop();
  });
  try {
    ready.get();
    try {
      source_ = std::make_unique<VideoDecoder>(options_.input, options_.read);
    } catch (const Error& e) {
      const std::string what = e.what();
      if (options_.camera && what.find("busy") != std::string::npos)
        throw Error(what + " (another program is using the camera)");
      throw;
    }
    const VideoInfo& info = source_->info();
    if (options_.window)
      window_ = std::make_unique<PreviewWindow>("stylize live: " + options_.input, info.width, info.height);
    // Outputs take the camera's size and rate unless told otherwise.
    double rate = options_.captureFps > 0                            ? options_.captureFps
                  : info.frameRate.num > 0 && info.frameRate.den > 0 ? av_q2d(info.frameRate)
                                                                     : 30;
    if (!(rate > 0 && rate <= 120)) rate = 30;
    if (!options_.audio.empty()) {
      if (options_.outputs.empty()) throw Error("--audio " + options_.audio + ": needs an --output to go to");
      audio_ = std::make_unique<AudioCapture>(options_.audio);
    }
    for (LiveOutputOptions output : options_.outputs) {
      if (output.width == 0) output.width = info.width, output.height = info.height;
      if (output.fps == 0) output.fps = rate;
      if (audio_) output.audio = &audio_->stream();
      outputs_.push_back(std::make_unique<LiveOutput>(output));
    }
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      quitting_ = true;
    }
    captured_.notify_all();
    inference_.join();
    throw;
  }
  // Sound and picture start together: a file given for both plays in step.
  if (audio_)
    audio_->start([this](const AVPacket& packet, Clock::time_point capturedAt) {
      for (auto& output : outputs_) output->offerAudio(packet, capturedAt);
    });
  capture_ = std::thread([this] { captureLoop(); });
}

LiveSession::~LiveSession() {
  audio_.reset();    // its thread feeds the outputs
  outputs_.clear();  // (a recording not finished by finishOutputs() is removed)
  {
    std::lock_guard lock(mutex_);
    quitting_ = true;
  }
  captured_.notify_all();
  stylized_.notify_all();
  if (capture_.joinable()) capture_.join();
  if (inference_.joinable()) inference_.join();
}

void LiveSession::captureLoop() {
  auto playStart = Clock::now();
  int64_t firstPts = AV_NOPTS_VALUE, sequence = 0, paced = 0;
  auto quitting = [&] {
    std::lock_guard lock(mutex_);
    return quitting_;
  };
  auto setStatus = [&](const std::string& s) {
    std::lock_guard lock(mutex_);
    status_ = s;
  };
  while (!quitting()) {
    if (!source_) {  // the camera went away: keep the window, try again every second
      setStatus("camera lost - retrying");
      for (int i = 0; i < 20 && !quitting(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      try {
        source_ = std::make_unique<VideoDecoder>(options_.input, options_.read);
        setStatus("");
      } catch (const Error&) {
      }
      continue;
    }
    VideoDecoder::Item item;
    bool got = false;
    try {
      got = source_->next(item);
    } catch (const Error&) {
      got = false;
    }
    if (!got) {
      if (options_.camera) {
        source_.reset();
        continue;
      }
      if (options_.loop && source_->rewind()) {
        playStart = Clock::now();
        firstPts = AV_NOPTS_VALUE;
        paced = 0;
        continue;
      }
      std::lock_guard lock(mutex_);
      sourceEnded_ = true;
      captured_.notify_all();
      stylized_.notify_all();
      return;
    }
    if (!item.frame) continue;  // audio: not played
    if (!options_.camera && options_.realTime && (item.frame->pts != AV_NOPTS_VALUE || options_.captureFps > 0)) {
      // Files play in real time, as a camera would deliver them.
      if (firstPts == AV_NOPTS_VALUE) firstPts = item.frame->pts;
      const auto due =
          playStart + (options_.captureFps > 0
                           ? std::chrono::microseconds(std::llround(1e6 * double(paced++) / options_.captureFps))
                           : std::chrono::microseconds(
                                 av_rescale_q(item.frame->pts - firstPts, source_->info().timeBase, AV_TIME_BASE_Q)));
      while (Clock::now() < due && !quitting())
        std::this_thread::sleep_for(std::min<Clock::duration>(due - Clock::now(), std::chrono::milliseconds(20)));
    }
    std::lock_guard lock(mutex_);
    latest_.frame = std::move(item.frame);  // an unconsumed older frame is dropped here: never queue lag
    latest_.at = Clock::now();
    latest_.sequence = ++sequence;
    captured_.notify_one();
  }
}

void LiveSession::inferenceLoop() {
  int64_t done = 0;
  double meanMs = 0;
  std::unique_ptr<FrameStabilizer> stabilizer;
  size_t stabilizerModel = stylizers_.size();  // the model `stabilizer` was made for (none yet)
  for (;;) {
    av::FramePtr frame;
    Clock::time_point capturedAt;
    int64_t sequence;
    size_t model;
    double strength, scale;
    {
      std::unique_lock lock(mutex_);
      captured_.wait(lock, [&] { return quitting_ || latest_.sequence > done || sourceEnded_; });
      if (quitting_ || latest_.sequence <= done || !latest_.frame) return;
      frame = std::move(latest_.frame);
      capturedAt = latest_.at;
      sequence = latest_.sequence;
      model = model_;
      strength = strength_;
      scale = scale_;
    }
    try {
      auto [width, height] = processingSize(frame->width, frame->height, options_.size, 0);
      width = std::max(16, int(std::lround(width * scale)));
      height = std::max(16, int(std::lround(height * scale)));
      const auto t0 = Clock::now();
      const torch::Tensor input = framesToTensor({frame.get()}, stylizers_[model]->device());
      if (model != stabilizerModel) {  // each model its own setting; a switch starts without history
        const VideoDefaults steady =
            chooseStabilize(options_.stabilize, options_.stabilizeGate,
                            videoDefaults(stylizers_[model]->info(), stylizers_[model]->name()));
        stabilizer =
            steady.stabilize > 0 ? std::make_unique<FrameStabilizer>(steady.stabilize, steady.stabilizeGate) : nullptr;
        stabilizerModel = model;
      }
      StylizeOptions o = options_.stylize;
      o.strength = strength;
      torch::Tensor out =
          resizeFrames((*stylizers_[model])(resizeFrames(input, height, width), o), frame->height, frame->width)[0];
      if (stabilizer) out = (*stabilizer)(input[0].cpu(), out.cpu());
      out = imageToBytes(out);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      meanMs = meanMs == 0 ? ms : 0.7 * meanMs + 0.3 * ms;
      std::lock_guard lock(mutex_);
      if (options_.targetFps > 0) {
        // Shrink fast when too slow, grow back slowly: a steady rate matters more than the last pixel.
        const double budget = 1000.0 / options_.targetFps;
        if (meanMs > budget * 1.05)
          scale_ = std::max(0.2, scale_ * std::max(0.8, std::sqrt(budget / meanMs)));
        else if (meanMs < budget * 0.75)
          scale_ = std::min(1.0, scale_ * 1.05);
      }
      result_ = {frameBytes(*frame), out, capturedAt, sequence, ms, width, height};
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      status_ = std::string("error: ") + e.what();
      sourceEnded_ = true;
    }
    stylized_.notify_all();
    done = sequence;
  }
}

void LiveSession::handleKey(int key) {
  std::lock_guard lock(mutex_);
  if (key >= SDLK_1 && key <= SDLK_9) {
    const size_t index = size_t(key - SDLK_1);
    if (index < stylizers_.size()) model_ = index;
  } else if (key == SDLK_PLUS || key == SDLK_EQUALS || key == SDLK_KP_PLUS) {
    strength_ = std::min(1.0, std::round(strength_ * 10 + 1) / 10);
  } else if (key == SDLK_MINUS || key == SDLK_KP_MINUS) {
    strength_ = std::max(0.0, std::round(strength_ * 10 - 1) / 10);
  } else if (key == SDLK_v) {
    view_ = view_ == LiveView::kStylized   ? LiveView::kOriginal
            : view_ == LiveView::kOriginal ? LiveView::kSideBySide
                                           : LiveView::kStylized;
  } else if (key == SDLK_o) {
    options_.overlay = !options_.overlay;
  } else if (key == SDLK_s && screen_.defined()) {
    saveScreenshot(options_.screenshotDir / ("stylize_live_" + std::to_string(++screenshots_) + ".png"));
  }
}

void LiveSession::compose(const Result& r) {
  LiveView view;
  size_t model;
  double strength;
  std::string status;
  {
    std::lock_guard lock(mutex_);
    view = view_;
    model = model_;
    strength = strength_;
    status = status_;
  }
  // Plain row copies, not tensor ops: a LibTorch op big enough to go parallel starts a second OpenMP thread
  // team on this thread, and two teams on two cores slowed every stylization by up to 1.6×.
  const bool both = view == LiveView::kSideBySide;
  const torch::Tensor& first = view == LiveView::kStylized ? r.stylized : r.source;
  const int64_t h = first.size(0), rowBytes = first.size(1) * 3;
  if (!screen_.defined() || screen_.size(0) != h || screen_.size(1) != first.size(1) * (both ? 2 : 1))
    screen_ = torch::empty({h, first.size(1) * (both ? 2 : 1), 3}, torch::kUInt8);
  uint8_t* to = screen_.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h; ++y) {
    std::memcpy(to, first.data_ptr<uint8_t>() + y * rowBytes, rowBytes);
    to += rowBytes;
    if (both) std::memcpy(to, r.stylized.data_ptr<uint8_t>() + y * rowBytes, rowBytes), to += rowBytes;
  }
  if (!options_.overlay) return;
  const int width = int(screen_.size(1)), height = int(screen_.size(0)), pitch = width * 3;
  const int scale = std::max(1, std::min(width / 2, height) / 200);
  uint8_t* pixels = screen_.data_ptr<uint8_t>();
  const LiveStats s = stats();
  char line[160];
  std::snprintf(line, sizeof line, "%.1f fps  latency %.0f ms  %dx%d", s.fps, s.latencyMs, r.width, r.height);
  drawText(pixels, width, height, pitch, 4 * scale, 4 * scale, line, scale);
  std::snprintf(line, sizeof line, "%zu/%zu %s  strength %.0f%%  %s", model + 1, names_.size(), names_[model].c_str(),
                strength * 100, viewName(view));
  drawText(pixels, width, height, pitch, 4 * scale, 14 * scale, line, scale);
  int row = 24;
  if (!status.empty()) drawText(pixels, width, height, pitch, 4 * scale, row * scale, status, scale), row += 10;
  for (const auto& [target, o] : s.outputs) {
    std::snprintf(line, sizeof line, "-> %s  %.0f ms", target.c_str(), o.latencyMedianMs);
    drawText(pixels, width, height, pitch, 4 * scale, row * scale, line, scale);
    row += 10;
  }
}

bool LiveSession::step() {
  if (finished_) return false;
  std::vector<int> keys;
  if (window_ && !window_->poll(&keys)) return !(finished_ = true);
  for (int key : keys) handleKey(key);
  Result fresh;
  bool ended = false;
  std::string error;
  {
    std::unique_lock lock(mutex_);
    stylized_.wait_for(lock, std::chrono::milliseconds(15),
                       [&] { return result_.sequence > shownSequence_ || sourceEnded_ || quitting_; });
    if (result_.sequence > shownSequence_) {
      fresh = result_;
      shownSequence_ = result_.sequence;
    }
    ended = sourceEnded_ && latest_.sequence <= result_.sequence && !fresh.source.defined();
    if (sourceEnded_ && status_.rfind("error: ", 0) == 0) error = status_.substr(7);
  }
  if (!error.empty()) throw Error(error);
  if (fresh.source.defined()) {
    const auto now = Clock::now();
    ++frames_;
    const double ms = std::chrono::duration<double, std::milli>(now - fresh.capturedAt).count();
    latencyMs_ = latencyMs_ == 0 ? ms : 0.8 * latencyMs_ + 0.2 * ms;
    inferenceMs_ = inferenceMs_ == 0 ? fresh.inferenceMs : 0.8 * inferenceMs_ + 0.2 * fresh.inferenceMs;
    shownAt_.push_back(now);
    if (shownAt_.size() > 30) shownAt_.erase(shownAt_.begin());
    inferenceWidth_ = fresh.width;
    inferenceHeight_ = fresh.height;
    shown_ = fresh;
    compose(shown_);
    if (!outputs_.empty()) {
      const torch::Tensor picture = screen_.clone();  // screen_ is drawn over in place; outputs keep theirs
      for (auto& output : outputs_) output->offer(picture, fresh.capturedAt);
    }
    if (frames_ == options_.screenshotAt && !options_.screenshotPath.empty()) saveScreenshot(options_.screenshotPath);
    if (options_.frames > 0 && frames_ >= options_.frames) finished_ = true;
  } else if (!keys.empty() && shown_.source.defined()) {
    compose(shown_);  // a key changed the view or overlay of a paused picture
  }
  // Present what changed; otherwise only now and then (a resized or uncovered window is redrawn). Presenting
  // every turn of this loop costs a software renderer a core's worth of copies the model needs.
  const auto now = Clock::now();
  if (window_ && screen_.defined() &&
      (fresh.source.defined() || !keys.empty() || now - presentedAt_ > std::chrono::milliseconds(100))) {
    window_->show(screen_.data_ptr<uint8_t>(), int(screen_.size(1)), int(screen_.size(0)), int(screen_.size(1)) * 3);
    presentedAt_ = now;
  }
  if (ended) finished_ = true;
  return !finished_;
}

void LiveSession::run(const std::atomic<bool>* stop) {
  while (!(stop && stop->load()) && step()) {
  }
}

void LiveSession::finishOutputs() {
  audio_.reset();  // no more sound comes in while the outputs finish
  std::string first;
  for (auto& output : outputs_) {
    try {
      output->finish();
    } catch (const std::exception& e) {
      if (first.empty()) first = e.what();
    }
  }
  if (!first.empty()) throw Error(first);
}

LiveStats LiveSession::stats() const {
  LiveStats s;
  s.frames = frames_;
  if (shownAt_.size() >= 2)
    s.fps = (shownAt_.size() - 1) / std::chrono::duration<double>(shownAt_.back() - shownAt_.front()).count();
  s.latencyMs = latencyMs_;
  s.inferenceMs = inferenceMs_;
  s.inferenceWidth = inferenceWidth_;
  s.inferenceHeight = inferenceHeight_;
  std::lock_guard lock(mutex_);
  s.model = model_;
  s.view = view_;
  s.strength = strength_;
  s.status = status_;
  for (const auto& output : outputs_) s.outputs.emplace_back(output->target(), output->stats());
  return s;
}

torch::Tensor LiveSession::screen() const {
  if (!screen_.defined()) return {};
  return screen_.permute({2, 0, 1}).to(torch::kFloat32).div(255);
}

void LiveSession::saveScreenshot(const std::filesystem::path& path) const {
  if (!screen_.defined()) throw Error(path.string() + ": nothing on screen yet");
  saveImageBytes(path, screen_.data_ptr<uint8_t>(), int(screen_.size(1)), int(screen_.size(0)),
                 int(screen_.size(1)) * 3);
}

}  // namespace stylize
