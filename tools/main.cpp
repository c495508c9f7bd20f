// stylize: one binary, one subcommand per job.
#include <malloc.h>
#include <torch/torch.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <vector>

#include "data/error.h"
#include "data/image.h"
#include "tools/commands.h"

namespace {

constexpr const char* kUsage = R"(stylize: real-time neural style transfer for images, video and live preview

usage: stylize <command> [options]     (stylize <command> --help for its options)

commands:
  optimize   stylize one image by optimisation (Gatys et al.): slow, the quality reference
  train      train a feed-forward style model on a folder of photos (Johnson et al.)
  image      stylize photos with a trained model, one forward pass each
  video      stylize a video file, audio and timing kept (FFmpeg in-process)
  live       stylize a webcam or video live in a window, switch styles with keys
  blend      average models fine-tuned from one parent into one (a model soup)
  import     convert pytorch/examples' .pth and the ONNX zoo's .onnx style models into Stylize models
  export     write a Stylize model as ONNX, for OpenCV, onnxruntime and the browser
  eval       measure finished outputs (eval loss: perceptual loss; eval flicker: warping error of a video)
  bench      measure speed against PyTorch on this machine (bench optimize, transformer, video, live)

examples:
  stylize optimize --content photo.jpg --style starry_night.jpg -o out.png
  stylize train --style starry_night.jpg --dataset photos/ -o starry.safetensors
  stylize image --model starry.safetensors photo.jpg -o out.jpg
  stylize video input.mp4 --model starry.safetensors -o output.mp4
  stylize live --camera /dev/video0 --model starry.safetensors --model wave.safetensors
  stylize blend steady.safetensors textured.safetensors -o mix.safetensors
  stylize import candy.pth -o candy.safetensors
  stylize export starry.safetensors -o starry.onnx
  stylize eval loss --content photo.jpg --style starry_night.jpg --image out.jpg
  stylize eval flicker input.mp4 output.mp4
  stylize bench optimize
)";

// Torch's own messages carry a C++ backtrace; the user gets the first line only.
std::string firstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

// glibc hands every freed block over its mmap threshold (activations: megabytes each) back to the kernel,
// and trims the heap top, so each forward pass page-faults its memory in again. Keeping it mapped takes a
// 2-second video run with the bundled model from 860 k page faults to 72 k (issue 23). jemalloc, tried too,
// faulted more with its default decay. STYLIZE_MALLOC=system keeps glibc's defaults, for comparisons.
void keepFreedMemoryMapped() {
  const char* choice = std::getenv("STYLIZE_MALLOC");
  if (choice && std::strcmp(choice, "system") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest: blocks up to 32 MiB come from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);   // and freed heap memory stays mapped
}

// Settings that libraries read once, when they are loaded, before main(). A user's own values are kept.
// - OMP_WAIT_POLICY=PASSIVE: LibTorch's OpenMP threads spin while they wait for the next parallel region
//   (libgomp's default). When anything else wants the cores (the decoder and encoder threads of `stylize
//   video` and `live`, a second job), a spinning thread holds the core its teammate needs and every region
//   waits for the scheduler: on 2 cores with a second job running, the compact model's 640x480 forward pass
//   took 789-859 ms with two threads against 85-187 ms with passive waiting (issue 23). STYLIZE_OMP=active
//   keeps libgomp's default, for comparisons.
// - OPENCV_IO_MAX_IMAGE_PIXELS: OpenCV allocates what an image header claims before decoding, up to 2^30
//   pixels by default (a 488-byte TIFF asked for 6.4 GB: the image fuzz target's find); ours is the limit
//   stylize itself applies (data/image.h).
// A process cannot give itself these in time: libc's own initialiser resets the environment to the one the
// process was started with, and then libgomp reads it. So stylize executes itself again with them, once (the
// PID stays the same), from its .preinit_array: that runs after the libraries are mapped but before any of
// their initialisers, so LibTorch's start-up (registering thousands of operators) happens only once.
// (Re-executing from main() cost `stylize --version` 0.69-0.78 s instead of 0.36-0.37 s.)
// (At this point libc has not set up its own environment yet: getenv/setenv do not work, the third argument is
// the environment.)
void setLoadTimeSettings(int, char** argv, char** envp) {
  const auto find = [&](const char* name) -> const char* {
    const size_t length = std::strlen(name);
    for (char** e = envp; *e; ++e)
      if (std::strncmp(*e, name, length) == 0 && (*e)[length] == '=') return *e + length + 1;
    return nullptr;
  };
  static char pixels[64];
  std::snprintf(pixels, sizeof pixels, "OPENCV_IO_MAX_IMAGE_PIXELS=%lld",
                static_cast<long long>(stylize::kDefaultMaxImagePixels));
  static char passive[] = "OMP_WAIT_POLICY=PASSIVE";
  const char* omp = find("STYLIZE_OMP");
  std::vector<char*> added;
  if (!find("OMP_WAIT_POLICY") && !(omp && std::strcmp(omp, "active") == 0)) added.push_back(passive);
  if (!find("OPENCV_IO_MAX_IMAGE_PIXELS")) added.push_back(pixels);
  if (added.empty()) return;
  std::vector<char*> environment(added);
  for (char** e = envp; *e; ++e) environment.push_back(*e);
  environment.push_back(nullptr);
  execve("/proc/self/exe", argv, environment.data());  // returns only if it failed: run on as we are
}
__attribute__((section(".preinit_array"), used)) void (*const kSetLoadTimeSettings)(int, char**,
                                                                                    char**) = setLoadTimeSettings;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  keepFreedMemoryMapped();
  const std::string command = argv[1];
  // A file-size limit (ulimit -f) must be a write error (EFBIG) that removes the temporary output and
  // says so, not a signal that kills the process and leaves the temporary behind.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    if (command == "optimize") return stylize::cli::runOptimize(argc - 1, argv + 1);
    if (command == "train") return stylize::cli::runTrain(argc - 1, argv + 1);
    if (command == "image") return stylize::cli::runImage(argc - 1, argv + 1);
#ifdef STYLIZE_HAVE_VIDEO
    if (command == "video") return stylize::cli::runVideo(argc - 1, argv + 1);
#ifdef STYLIZE_HAVE_SDL2
    if (command == "live") return stylize::cli::runLive(argc - 1, argv + 1);
#endif
#endif
    if (command == "blend") return stylize::cli::runBlend(argc - 1, argv + 1);
    if (command == "import") return stylize::cli::runImport(argc - 1, argv + 1);
    if (command == "export") return stylize::cli::runExport(argc - 1, argv + 1);
    if (command == "eval") return stylize::cli::runEval(argc - 1, argv + 1);
    if (command == "bench") return stylize::cli::runBench(argc - 1, argv + 1);
    if (command == "--version") {
      std::cout << "stylize " << STYLIZE_VERSION << " (LibTorch " << TORCH_VERSION << ")\n";
      return 0;
    }
    std::cerr << "stylize: error: unknown command \"" << command << "\" (see stylize --help)\n";
    return 2;
  } catch (const stylize::Error& e) {
    std::cerr << "stylize: error: " << e.what() << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "stylize: error: " << firstLine(e.what_without_backtrace()) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "stylize: error: " << firstLine(e.what()) << "\n";
  }
  return 1;
}
