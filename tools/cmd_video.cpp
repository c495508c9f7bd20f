// stylize video: a video file in, a stylized video out, with its audio, timing and rotation kept.
#include <torch/torch.h>

#include <iostream>
#include <memory>

#include "data/error.h"
#include "data/files.h"
#include "data/image.h"
#include "infer/video_pipeline.h"
#include "tools/cli.h"
#include "tools/commands.h"
#ifdef STYLIZE_HAVE_SDL2
#include "infer/preview_window.h"
#endif

namespace fs = std::filesystem;

namespace stylize::cli {

namespace {

// --size, --max-size, --start, --duration.
void addVideoInputOptions(cxxopts::Options& options) {
  // clang-format off
  options.add_options("Input")
      ("size", "long side to stylize at (0 = as decoded); the result is scaled back to the input size", cxxopts::value<int>()->default_value("0"))
      ("max-size", "stylize at most at this long side (only shrinks; 0 = no limit)", cxxopts::value<int>()->default_value("0"))
      ("start", "start at this many seconds", cxxopts::value<double>()->default_value("0"))
      ("duration", "stylize this many seconds (0 = to the end)", cxxopts::value<double>()->default_value("0"))
      ("hwaccel", "decode on the GPU (NVDEC): auto (when the model runs on CUDA), cuda, or none; falls back to software decoding with a note", cxxopts::value<std::string>()->default_value("auto"));
  // clang-format on
}

ReadOptions readOptionsFromArgs(const cxxopts::ParseResult& args) {
  ReadOptions o;
  o.hwaccel = parseHwAccel(args["hwaccel"].as<std::string>());
  o.start = args["start"].as<double>();
  o.duration = args["duration"].as<double>();
  if (!(o.start >= 0)) throw Error("--start must be 0 or more seconds");
  if (!(o.duration >= 0)) throw Error("--duration must be 0 (to the end) or more seconds");
  for (const char* flag : {"size", "max-size"}) {
    const int v = args[flag].as<int>();
    if (v != 0 && (v < 16 || v > 16384)) throw Error(std::string("--") + flag + " must be 0 or 16..16384");
  }
  return o;
}

}  // namespace

int runVideo(int argc, char** argv) {
  cxxopts::Options options(
      "stylize video",
      "Stylize a video file: FFmpeg decode → model → FFmpeg encode in one process, on three "
      "threads.\nAudio and subtitles are copied untouched (audio the container cannot hold is re-encoded); timestamps "
      "(also variable frame "
      "rate), rotation, aspect ratio and metadata are kept.\n"
      "  stylize video input.mp4 --model starry.safetensors -o output.mp4\n"
      "  stylize video input.mov --model starry.safetensors -o out.webm --max-size 720 --preview\n"
      "  stylize video input.mkv --model starry.safetensors -o clip.mp4 --start 60 --duration 10 --stabilize\n"
      "Ctrl-C stops early and still leaves a valid, shorter video.\n");
  // clang-format off
  options.add_options()
      ("input", "input video (anything FFmpeg reads: mp4, mkv, mov, webm, avi, gif, img%03d.png)", cxxopts::value<std::string>())
      ("o,output", "output video; the container follows the extension (.mp4 .mkv .mov .webm)", cxxopts::value<std::string>())
      ("batch", "frames per forward pass (more helps on a GPU)", cxxopts::value<int>()->default_value("1"))
      ("preview", "show the frames in a window while encoding")
      ("still", "also save a frame as a side-by-side image (input | stylized), e.g. compare.jpg", cxxopts::value<std::string>())
      ("still-at", "the time of that frame in seconds (default: the middle)", cxxopts::value<double>())
      ("color-conversion", "where YUV <-> RGB runs: swscale (CPU threads), tensor (on the model's device: only YUV bytes cross to a GPU), auto (tensor on CUDA, else swscale)", cxxopts::value<std::string>()->default_value("auto"));
  options.add_options("Output")
      ("codec", "video encoder (default: libx264, libvpx-vp9 for .webm)", cxxopts::value<std::string>())
      ("crf", "constant quality, lower is better (default: 18 for x264, 32 for VP9)", cxxopts::value<int>())
      ("preset", "x264 speed/size preset (ultrafast … veryslow; default medium)", cxxopts::value<std::string>())
      ("pix-fmt", "pixel format (default yuv420p: plays everywhere, halves odd sizes' last row/column)", cxxopts::value<std::string>());
  // clang-format on
  addVideoInputOptions(options);
  addStylizeOptions(options);
  addStabilizeOptions(options);
  addComputeOptions(options);
  options.parse_positional({"input"});
  options.positional_help("INPUT");
  auto args = parse(options, argc, argv);
  const std::string model = singleModel(args, "stylize video");
  if (!args.count("input")) throw Error("stylize video: no input video (see --help)");
  if (!args.count("output")) throw Error("stylize video: -o/--output is required (see --help)");

  VideoJob job;
  job.input = args["input"].as<std::string>();
  job.output = args["output"].as<std::string>();
  job.read = readOptionsFromArgs(args);
  job.size = args["size"].as<int>();
  job.maxSize = args["max-size"].as<int>();
  job.batch = args["batch"].as<int>();
  const StabilizeFlags stabilize = stabilizeFlagsFromArgs(args);
  job.stabilize = stabilize.strength;
  job.stabilizeGate = stabilize.gate;
  job.stylize = stylizeOptionsFromArgs(args);
  if (args.count("codec")) job.write.codec = args["codec"].as<std::string>();
  if (args.count("crf")) job.write.crf = args["crf"].as<int>();
  if (args.count("preset")) job.write.preset = args["preset"].as<std::string>();
  if (args.count("pix-fmt")) job.write.pixFmt = args["pix-fmt"].as<std::string>();
  if (job.batch < 1 || job.batch > 256) throw Error("--batch must be 1..256");
  const std::string conversion = args["color-conversion"].as<std::string>();
  if (conversion == "tensor")
    job.colorConversion = ColorConversion::kTensor;
  else if (conversion == "swscale")
    job.colorConversion = ColorConversion::kSwscale;
  else if (conversion != "auto")
    throw Error("--color-conversion must be auto, swscale or tensor, not '" + conversion + "'");
  checkNotAnInput(job.output, {job.input});
  checkWritable(job.output);
  const fs::path still = args.count("still") ? fs::path(args["still"].as<std::string>()) : fs::path();
  if (!still.empty()) {
    checkImageOutputPath(still);
    checkNotAnInput(still, {job.input, job.output});
  }
  av::quietLogs();

  StopSignal stop;  // from here on Ctrl-C means "stop and keep what is done"
  const torch::Device device = applyComputeOptions(args);
  if (job.read.hwaccel == HwAccel::kAuto) job.read.hwaccel = device.is_cuda() ? HwAccel::kCuda : HwAccel::kNone;
  job.read.cudaDevice = device.is_cuda() && device.has_index() ? device.index() : 0;
  Stylizer stylizer(model, device, precisionFromArgs(args));
  noteModelStabilize(stabilize, stylizer);

  VideoCallbacks callbacks;
  double stillAt = args.count("still-at") ? args["still-at"].as<double>() : -1;
  AVRational timeBase{1, 1};
  bool stillTaken = false;
  torch::Tensor stillImage;
  std::unique_ptr<ProgressBar> bar;
  const auto start = std::chrono::steady_clock::now();
  callbacks.started = [&](const VideoInfo& info) {
    if (!info.decodeNote.empty()) std::cerr << "stylize: note: " << info.decodeNote << "\n";
    if (info.hardwareDecoding) std::cerr << "stylize: decoding on the GPU (NVDEC)\n";
    bar = std::make_unique<ProgressBar>(info.frames, "frames", start);
    if (stillAt < 0) stillAt = info.duration / 2;
    timeBase = info.timeBase;
  };
  callbacks.progress = [&](const VideoProgress& p) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bar->update(p.frames, fmt::format("{:.2f}× real time", elapsed > 0 ? p.position / elapsed : 0.0));
  };
  // The first frame at --still-at; until then the latest, so a video shorter than its estimate still yields one.
  auto keepStill = [&](const AVFrame& source, const AVFrame& stylized) {
    if (still.empty() || stillTaken) return;
    stillTaken = stylized.pts != AV_NOPTS_VALUE && stylized.pts * av_q2d(timeBase) >= stillAt;
    stillImage =
        torch::cat({framesToTensor({&source}, torch::kCPU)[0], framesToTensor({&stylized}, torch::kCPU)[0]}, 2);
  };
  if (!still.empty())
    callbacks.frame = [&](const AVFrame& source, const AVFrame& rgb) {
      keepStill(source, rgb);
      return true;
    };
#ifdef STYLIZE_HAVE_SDL2
  std::unique_ptr<PreviewWindow> preview;
  if (args.count("preview")) {
    preview = std::make_unique<PreviewWindow>("stylize video: " + job.input + " (" + stylizer.name() + ")", 1280, 720);
    callbacks.frame = [&](const AVFrame& source, const AVFrame& rgb) {
      keepStill(source, rgb);
      if (!preview) return true;
      preview->show(rgb.data[0], rgb.width, rgb.height, rgb.linesize[0]);
      if (!preview->poll()) {
        preview.reset();
        std::cerr << "\nstylize: preview closed; encoding goes on (Ctrl-C stops early)\n";
      }
      return true;
    };
  }
#else
  if (args.count("preview")) throw Error("--preview: this build has no SDL2 (install libsdl2-dev and rebuild)");
#endif

  callbacks.stop = &stop.flag();
  const VideoReport report = stylizeVideo(stylizer, job, callbacks);
  if (bar) bar->finish();
  if (stillImage.defined()) {
    saveImage(still, stillImage);
    std::cerr << "stylize: side-by-side still → " << still.string() << "\n";
  }
  std::cerr << fmt::format(
      "stylize: {} → {}: {} frames {}x{} ({}, stylized at {}x{}) in {}, {:.2f} fps (model alone {:.2f} fps)\n",
      job.input, job.output.string(), report.frames, report.width, report.height, report.codec, report.inferenceWidth,
      report.inferenceHeight, formatDuration(report.seconds), report.frames / report.seconds,
      report.inferenceSeconds > 0 ? report.frames / report.inferenceSeconds : 0.0);
  if (report.copiedPackets)
    std::cerr << "stylize: carried over " << report.copiedPackets << " audio/subtitle packets\n";
  for (const auto& s : report.transcodedStreams)
    std::cerr << "stylize: note: " << s << " re-encoded: " << job.output.extension().string()
              << " cannot hold the original codec (.mkv keeps it untouched)\n";
  for (const auto& s : report.droppedStreams)
    std::cerr << "stylize: warning: " << s << " cannot go into " << job.output.extension().string()
              << "; left out (try .mkv)\n";
  if (report.skippedPackets)
    std::cerr << "stylize: warning: " << report.skippedPackets << " corrupt packets skipped; timing kept\n";
  if (!report.endError.empty())
    std::cerr << "stylize: warning: " << job.input << ": reading stopped early: " << report.endError << "\n";
  if (report.width != report.inputWidth || report.height != report.inputHeight)
    std::cerr << fmt::format(
        "stylize: note: {}x{} has an odd side; encoded {}x{} (--pix-fmt yuv444p keeps every pixel)\n",
        report.inputWidth, report.inputHeight, report.width, report.height);
  if (report.interrupted && report.frames == 0) {
    std::cerr << "stylize: interrupted before the first frame; nothing written\n";
    return 130;
  }
  if (report.interrupted) {
    std::cerr << "stylize: interrupted: " << job.output.string() << " holds the first " << report.frames << " frames\n";
    return 130;
  }
  return 0;
}

}  // namespace stylize::cli
