// stylize bench video: does the pipeline hide decode and encode behind inference, how does it compare
// with the frame-dump workflow (ffmpeg → PNG → stylize image → ffmpeg), and is its memory flat?
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <iostream>

#include "data/error.h"
#include "infer/video_encoder.h"
#include "infer/video_pipeline.h"
#ifdef STYLIZE_HAVE_SDL2
#include "infer/live_session.h"
#endif
#include "tools/cli.h"
#include "tools/commands.h"

namespace fs = std::filesystem;

namespace stylize::cli {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string quote(const std::string& s) { return "'" + s + "'"; }

int shell(const std::string& command) { return std::system(command.c_str()); }

// Peak resident memory of `stylize video` on the whole clip, in a child process so ours does not count.
double peakMegabytes(const std::string& clip, const std::string& model, const fs::path& output, int threads) {
  const pid_t pid = ::fork();
  if (pid < 0) throw Error("bench video: cannot fork");
  if (pid == 0) {
    const std::string t = std::to_string(threads);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, STDERR_FILENO);
    ::execl("/proc/self/exe", "stylize", "video", clip.c_str(), "--model", model.c_str(), "-o", output.c_str(),
            "--threads", t.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw Error("bench video: stylize video failed on " + clip);
  return usage.ru_maxrss / 1024.0;
}

}  // namespace

namespace {

// A temporary folder, removed with its contents however the benchmark ends.
struct ScratchDir {
  explicit ScratchDir(const std::string& name)
      : path(fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

// "compact 8/3": what a table row needs to tell models apart.
std::string describeArchitecture(const nlohmann::json& info, const std::string& where) {
  const TransformerConfig c = architectureFromJson(info.value("architecture", nlohmann::json()), where);
  return fmt::format("{} {}/{}", architectureName(c.type), c.width, c.blocks);
}

std::vector<fs::path> benchModels(const cxxopts::ParseResult& args) {
  std::vector<fs::path> models;
  if (args.count("model")) {
    for (const auto& m : args["model"].as<std::vector<std::string>>()) models.emplace_back(m);
    return models;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(assetDir() / "models", ec))
    if (entry.path().extension() == ".safetensors") models.push_back(entry.path());
  std::sort(models.begin(), models.end());
  if (models.empty()) throw Error("bench: no models in " + (assetDir() / "models").string() + "; pass --model");
  return models;
}

fs::path sharedClip(const std::string& name) { return assetDir().parent_path() / "shared" / "data" / "video" / name; }

}  // namespace

int benchVideo(const cxxopts::ParseResult& args) {
  const fs::path model = benchModels(args).front();
  std::vector<std::string> clips;
  if (args.count("clip")) {
    clips = args["clip"].as<std::vector<std::string>>();
  } else {
    for (const char* name : {"intel_one-by-one-person_30s_768x432.mp4", "opencv_vtest_pedestrians_30s_768x576.mp4",
                             "davis2016_parkour_854x480_24fps.mp4"})
      clips.push_back(sharedClip(name).string());
  }
  const double seconds = args["seconds"].as<double>();
  const bool dump = args.count("dump") > 0, memory = args.count("memory") > 0;
  av::quietLogs();
  const torch::Device device = applyComputeOptions(args);
  Stylizer stylizer(model, device);
  const ScratchDir scratchDir("stylize-bench-video");
  const fs::path& scratch = scratchDir.path;

  std::cout << fmt::format("model {} ({}), first {} s of each clip, {} threads on {}\n\n", model.filename().string(),
                           describeArchitecture(stylizer.info(), model.string()), seconds, torch::get_num_threads(),
                           device.str());
  std::cout << "| clip | frames | model only (fps) | stylize video (fps) | ratio |"
            << (dump ? " frame dump (fps) | speed-up |" : "") << (memory ? " peak RSS, whole clip |" : "") << "\n";
  std::cout << "|---|---|---|---|---|" << (dump ? "---|---|" : "") << (memory ? "---|" : "") << "\n";
  for (const auto& clip : clips) {
    ReadOptions read;
    read.duration = seconds;
    // Model alone: the same frames, decoded beforehand, one forward pass each.
    VideoDecoder decoder(clip, read);
    std::vector<av::FramePtr> frames;
    VideoDecoder::Item item;
    while (decoder.next(item))
      if (item.frame) frames.push_back(std::move(item.frame));
    if (frames.empty()) throw Error(clip + ": no frames");
    stylizer(framesToTensor({frames[0].get()}, device));  // warm-up: allocator, oneDNN kernels
    double modelSeconds = 0;
    for (const auto& f : frames) {
      torch::Tensor x = framesToTensor({f.get()}, device);
      const auto t0 = Clock::now();
      torch::Tensor y = stylizer(x).cpu();
      modelSeconds += since(t0);
    }
    const double modelFps = frames.size() / modelSeconds;

    VideoJob job;
    job.input = clip;
    job.output = scratch / "pipeline.mp4";
    job.read = read;
    const VideoReport report = stylizeVideo(stylizer, job);
    const double pipelineFps = report.frames / report.seconds;
    std::string row = fmt::format("| {} | {} | {:.2f} | {:.2f} | {:.2f} |", fs::path(clip).filename().string(),
                                  frames.size(), modelFps, pipelineFps, pipelineFps / modelFps);

    if (dump) {
      // What peers document: ffmpeg to PNGs, stylize each, ffmpeg back (audio muxed from the source).
      const fs::path in = scratch / "in", out = scratch / "out";
      fs::create_directories(in);
      fs::create_directories(out);
      const double fps = av_q2d(decoder.info().frameRate);
      const std::string self = fs::read_symlink("/proc/self/exe").string();
      const auto t0 = Clock::now();
      int rc = shell("ffmpeg -v error -y -i " + quote(clip) + " -t " + std::to_string(seconds) + " " +
                     quote((in / "%05d.png").string()));
      rc |= shell(quote(self) + " image --model " + quote(model.string()) + " --threads " +
                  std::to_string(torch::get_num_threads()) + " " + quote(in.string()) + "/*.png -o " +
                  quote(out.string()) + " 2>/dev/null");
      rc |= shell("ffmpeg -v error -y -framerate " + std::to_string(fps) + " -i " +
                  quote((out / ("%05d_" + stylizer.name() + ".png")).string()) + " -t " + std::to_string(seconds) +
                  " -i " + quote(clip) + " -map 0:v -map 1:a? -c:v libx264 -crf 18 -pix_fmt yuv420p -c:a copy " +
                  quote((scratch / "dump.mp4").string()));
      if (rc != 0) throw Error("bench video: the frame-dump workflow failed (is ffmpeg installed?)");
      const double dumpFps = frames.size() / since(t0);
      row += fmt::format(" {:.2f} | {:.2f}× |", dumpFps, pipelineFps / dumpFps);
      fs::remove_all(in);
      fs::remove_all(out);
    }
    if (memory)
      row += fmt::format(" {:.0f} MB |",
                         peakMegabytes(clip, model.string(), scratch / "whole.mp4", torch::get_num_threads()));
    std::cout << row << std::endl;
  }
  return 0;
}

#ifdef STYLIZE_HAVE_SDL2
// What a USB webcam at 640×480 delivers: raw YUYV frames, which cost only the colour conversion. The clip is
// scaled and written that way once, before timing, so that decoding a compressed 768×576 stream (more work
// than any camera asks) does not take the model's CPU time.
fs::path writeCameraClip(const std::string& clip, const fs::path& dir) {
  ReadOptions read;
  read.width = 640;
  read.height = 480;
  read.duration = 5;
  VideoDecoder source(clip, read);
  WriteOptions raw;
  raw.codec = "rawvideo";
  raw.pixFmt = "yuyv422";
  const fs::path out = dir / "camera_640x480_yuyv.mkv";
  VideoEncoder encoder(out, source, raw);
  VideoDecoder::Item item;
  while (source.next(item))
    if (item.frame) encoder.write(*item.frame);
  encoder.finish();
  return out;
}

int benchLive(const cxxopts::ParseResult& args) {
  // Frames are delivered at a webcam's 30 fps (not the clip's 10), so the model sets the rate. Decoding as
  // fast as it goes would instead spend a core on frames that are dropped, which no camera does.
  const std::string clip = args.count("clip") ? args["clip"].as<std::vector<std::string>>().front()
                                              : sharedClip("opencv_vtest_pedestrians_30s_768x576.mp4").string();
  ::setenv("SDL_VIDEODRIVER", "offscreen", 0);
  av::quietLogs();
  const torch::Device device = applyComputeOptions(args);
  const int64_t frames = args["frames"].as<int64_t>();
  const ScratchDir scratchDir("stylize-bench-live");
  const fs::path& scratch = scratchDir.path;
  const fs::path camera = writeCameraClip(clip, scratch);
  std::cout << fmt::format(
      "{} as a 640x480 YUYV camera at 30 fps, {} frames each (after 10 warm-up), {} threads on {}\n\n", clip, frames,
      torch::get_num_threads(), device.str());
  std::cout << "| model | architecture | --target-fps | stylized at | fps | latency (ms) | of which inference (ms) |\n"
            << "|---|---|---|---|---|---|---|\n";
  std::string outputRows;
  for (const auto& model : benchModels(args)) {
    for (const double target : {0.0, 15.0}) {
      LiveOptions o;
      o.input = camera.string();
      o.loop = true;
      o.captureFps = 30;
      o.models = {model};
      o.device = device;
      o.targetFps = target;
      if (args.count("output"))
        for (const auto& url : args["output"].as<std::vector<std::string>>()) o.outputs.push_back({url, "", 0, 0, 0});
      LiveSession session(o);
      const std::string architecture = describeArchitecture(session.modelInfo(0), model.string());
      for (int i = 0; i < 100000 && session.stats().frames < 10; ++i) session.step();
      const auto t0 = Clock::now();
      const int64_t start = session.stats().frames;
      std::vector<double> latencies, inference;
      while (session.stats().frames < start + frames && session.step()) {
        latencies.push_back(session.stats().latencyMs);
        inference.push_back(session.stats().inferenceMs);
      }
      const LiveStats s = session.stats();
      const double fps = (s.frames - start) / since(t0);
      std::cout << fmt::format("| {} | {} | {} | {}x{} | {:.1f} | {:.0f} | {:.0f} |\n", model.filename().string(),
                               architecture, target > 0 ? fmt::format("{:.0f}", target) : "off", s.inferenceWidth,
                               s.inferenceHeight, fps, median(latencies), median(inference));
      for (const auto& [url, output] : s.outputs)
        outputRows += fmt::format("| {} | {} | {} | {} | {} of {} | {:.0f} | {:.0f} |\n", model.filename().string(),
                                  target > 0 ? fmt::format("{:.0f}", target) : "off", url, output.sent, output.repeated,
                                  output.sent, output.latencyMedianMs, output.latencyP95Ms);
      session.finishOutputs();
    }
  }
  if (!outputRows.empty())
    std::cout << "\nOutputs (capture to muxer, new pictures only; the output sends 30 fps, repeating the last "
                 "picture while the model works)\n\n| model | --target-fps | output | frames sent | repeats | "
                 "latency median (ms) | 95th percentile (ms) |\n|---|---|---|---|---|---|---|\n"
              << outputRows;
  return 0;
}
#endif

}  // namespace stylize::cli
