// stylize live: a webcam or any video, stylized in a window; keys switch models, views and strength.
#include <torch/torch.h>

#include <iostream>
#include <sstream>

#include "data/error.h"
#include "data/image.h"
#include "infer/live_session.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace fs = std::filesystem;

namespace stylize::cli {

int runLive(int argc, char** argv) {
  cxxopts::Options options(
      "stylize live",
      "Stylize a webcam (or any video) live in a window. Always the newest frame: a slow model drops frames, "
      "it never lags.\n"
      "  stylize live --camera /dev/video0 --model models/starry_night_live.safetensors --model scream.safetensors\n"
      "      (models trained with --architecture compact run full 640x480 frames at 15+ fps on 2 CPU cores)\n"
      "  stylize live --input clip.mp4 --loop --model starry.safetensors --target-fps 15\n"
      "  stylize live --input clip.mp4 --model starry.safetensors --frames 50 --screenshot-at 50 --screenshot s.png\n"
      "  stylize live --model m.safetensors --output /dev/video10      a virtual webcam for calls and OBS "
      "(v4l2loopback)\n"
      "  stylize live --model m.safetensors --output udp://192.168.1.20:5000 --output talk.mkv --no-window\n"
      "  stylize live --model m.safetensors --audio pulse:default --output talk.mp4     with the microphone\n"
      "Keys: 1-9 model · v stylized/original/side by side · +/- strength · s screenshot · o overlay · "
      "f fullscreen · q/Esc quit\n");
  // clang-format off
  options.add_options()
      ("camera", "V4L2 camera device (default /dev/video0 when there is no --input)", cxxopts::value<std::string>())
      ("camera-size", "capture size asked of the camera, e.g. 640x480 (with --input: the file is scaled to it)", cxxopts::value<std::string>())
      ("camera-fps", "capture rate asked of the camera", cxxopts::value<int>())
      ("input", "a video file or stream instead of a camera (played in real time)", cxxopts::value<std::string>())
      ("loop", "start the --input over at its end")
      ("size", "long side to stylize at (0 = as captured); the picture is scaled back for display", cxxopts::value<int>()->default_value("0"))
      ("target-fps", "lower the stylization size automatically to hold this rate (0 = off)", cxxopts::value<double>()->default_value("0"))
      ("frames", "quit after this many stylized frames (0 = run until q)", cxxopts::value<int64_t>()->default_value("0"))
      ("screenshot-at", "save a screenshot when this frame shows (with --screenshot)", cxxopts::value<int64_t>()->default_value("0"))
      ("screenshot", "file for --screenshot-at", cxxopts::value<std::string>())
      ("screenshot-dir", "folder for screenshots taken with the s key", cxxopts::value<std::string>()->default_value("."))
      ("no-overlay", "hide the fps / latency / model line")
      ("output", "also send the picture to a v4l2loopback device (/dev/videoN), a stream (udp://, rtp://, tcp://, srt://, rtmp://; H.264 tuned for latency) or a recording (.mkv, .mp4, .ts; written whole on exit); repeatable", cxxopts::value<std::vector<std::string>>())
      ("output-format", "pixel format for a v4l2 device: yuyv422 (what browsers, Zoom/Meet and OBS take) or yuv420p", cxxopts::value<std::string>()->default_value("yuyv422"))
      ("no-window", "no preview window (outputs only; Ctrl-C stops)")
      ("audio", "sound for stream and file outputs: pulse:default, alsa:hw:0, or a file or URL (played in real time)", cxxopts::value<std::string>())
      ("av-delay", "with --audio: seconds from capture to output for picture and sound alike; must exceed the stylizing latency (the exit line says if pictures came later)", cxxopts::value<double>()->default_value("0.25"));
  // clang-format on
  addStylizeOptions(options);
  addStabilizeOptions(options);
  addComputeOptions(options);
  auto args = parse(options, argc, argv);

  LiveOptions live;
  if (!args.count("model")) throw Error("stylize live: --model is required (see --help)");
  for (const auto& m : args["model"].as<std::vector<std::string>>()) live.models.emplace_back(m);
  if (args.count("input") && args.count("camera")) throw Error("stylize live: give --camera or --input, not both");
  if (args.count("input")) {
    live.input = args["input"].as<std::string>();
    live.loop = args.count("loop") > 0;
    if (args.count("camera-size")) {  // a file stands in for a camera of that size
      const std::string size = args["camera-size"].as<std::string>();
      char x = 0;
      std::istringstream in(size);
      if (!(in >> live.read.width >> x >> live.read.height) || x != 'x' || live.read.width < 16 ||
          live.read.height < 16)
        throw Error("--camera-size " + size + ": expected WIDTHxHEIGHT, e.g. 640x480");
    }
  } else {
    live.input = args.count("camera") ? args["camera"].as<std::string>() : "/dev/video0";
    live.camera = true;
    live.read.format = "v4l2";
    if (!fs::exists(live.input)) throw Error(live.input + ": no such camera (plug one in, or use --input FILE)");
    if (args.count("camera-size"))
      live.read.demuxerOptions.emplace_back("video_size", args["camera-size"].as<std::string>());
    if (args.count("camera-fps"))
      live.read.demuxerOptions.emplace_back("framerate", std::to_string(args["camera-fps"].as<int>()));
  }
  live.size = args["size"].as<int>();
  if (live.size != 0 && (live.size < 16 || live.size > 16384)) throw Error("--size must be 0 or 16..16384");
  live.targetFps = args["target-fps"].as<double>();
  if (!(live.targetFps >= 0 && live.targetFps <= 240)) throw Error("--target-fps must be 0..240");
  live.frames = args["frames"].as<int64_t>();
  live.screenshotAt = args["screenshot-at"].as<int64_t>();
  if (live.screenshotAt > 0) {
    if (!args.count("screenshot")) throw Error("--screenshot-at needs --screenshot FILE");
    live.screenshotPath = args["screenshot"].as<std::string>();
    checkImageOutputPath(live.screenshotPath);
  }
  live.screenshotDir = args["screenshot-dir"].as<std::string>();
  live.overlay = args.count("no-overlay") == 0;
  const StabilizeFlags stabilize = stabilizeFlagsFromArgs(args);
  live.stabilize = stabilize.strength;
  live.stabilizeGate = stabilize.gate;
  if (args.count("output"))
    for (const auto& target : args["output"].as<std::vector<std::string>>()) {
      LiveOutputOptions output;
      output.target = target;
      output.pixelFormat = args["output-format"].as<std::string>();
      output.audioDelay = args["av-delay"].as<double>();
      if (!(output.audioDelay >= 0.02 && output.audioDelay <= 10)) throw Error("--av-delay must be 0.02..10 seconds");
      live.outputs.push_back(output);
    }
  live.window = args.count("no-window") == 0;
  if (args.count("audio")) live.audio = args["audio"].as<std::string>();
  if (!live.window && live.outputs.empty()) throw Error("stylize live: --no-window needs an --output");
  live.stylize = stylizeOptionsFromArgs(args);
  live.precision = precisionFromArgs(args);
  av::quietLogs();
  live.device = applyComputeOptions(args);

  LiveSession session(live);
  StopSignal stop;
  session.run(&stop.flag());
  session.finishOutputs();
  const LiveStats s = session.stats();
  std::cerr << fmt::format("stylize: live: {} stylized frames, {:.1f} fps, latency {:.0f} ms at {}x{}\n", s.frames,
                           s.fps, s.latencyMs, s.inferenceWidth, s.inferenceHeight);
  for (const auto& [target, o] : s.outputs)
    std::cerr << fmt::format(
                     "stylize: → {}: {} frames ({} repeats of a slower model's picture), capture-to-output latency "
                     "median {:.0f} "
                     "ms, 95th percentile {:.0f} ms\n",
                     target, o.sent, o.repeated, o.latencyMedianMs, o.latencyP95Ms)
              << (o.audioError.empty() ? ""
                                       : "stylize: warning: " + target + ": the sound stopped: " + o.audioError + "\n")
              << (o.late == 0 ? ""
                              : fmt::format("stylize: warning: {}: {} pictures came later than --av-delay and lag the "
                                            "sound; raise it\n",
                                            target, o.late));
  if (live.screenshotAt > 0 && s.frames >= live.screenshotAt)
    std::cerr << "stylize: screenshot → " << live.screenshotPath.string() << "\n";
  return 0;
}

}  // namespace stylize::cli
