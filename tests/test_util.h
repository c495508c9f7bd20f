// Helpers shared by the test suites: scratch folders, shared-data lookup, running the CLI.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "data/safetensors.h"

namespace stylize::test {

// A fresh folder under the system temp dir, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("stylize-" + std::string(info ? info->name() : "test") + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::filesystem::path sharedDir() { return STYLIZE_SHARED_DIR; }
inline std::filesystem::path sourceDir() { return STYLIZE_SOURCE_DIR; }
inline std::filesystem::path sharedVgg() { return sharedDir() / "vgg19" / "vgg19_conv1_1-conv3_4.safetensors"; }

#define STYLIZE_REQUIRE_SHARED(path) \
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "needs " << (path).string()

// A VGG19 prefix of `layers` conv layers with random (He-initialised) weights and torchvision names, plus
// a classifier key as in timm's full file. Fast stand-in for the real loss network.
inline Safetensors randomVgg(int layers) {
  static constexpr int kConvIndex[] = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34};
  static constexpr int64_t kChannels[] = {64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512};
  torch::manual_seed(1);
  Safetensors file;
  int64_t in = 3;
  for (int i = 0; i < layers; ++i) {
    const std::string prefix = "features." + std::to_string(kConvIndex[i]);
    file.tensors[prefix + ".weight"] = torch::randn({kChannels[i], in, 3, 3}) * std::sqrt(2.0 / (9 * in));
    file.tensors[prefix + ".bias"] = torch::randn({kChannels[i]}) * 0.01;
    in = kChannels[i];
  }
  file.tensors["classifier.0.weight"] = torch::zeros({2, 2});
  return file;
}

// A loopback port nobody uses now (SOCK_STREAM: TCP, SOCK_DGRAM: UDP), for a test's own server or stream.
inline int freeLoopbackPort(int type = SOCK_STREAM) {
  const int fd = socket(AF_INET, type, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

struct CommandResult {
  int exitCode;
  std::string output;  // stdout and stderr
};

// Runs `stylize <args>` with a private cache folder; `wrapper` (e.g. "timeout 5") goes before the binary.
inline CommandResult runStylize(const std::string& args, const std::filesystem::path& cache,
                                const std::string& wrapper = "") {
  const std::string command =
      "XDG_CACHE_HOME='" + cache.string() + "' " + wrapper + " '" STYLIZE_BINARY "' " + args + " 2>&1";
  CommandResult result{-1, {}};
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A runStylize() wrapper that sends `signal` (INT, KILL, ...) `delay` seconds after the file `watched` first
// matches `pattern` (grep -E, no single quotes), not after a fixed time: start-up alone can take seconds on
// a loaded machine. The command's output goes to `scratch` meanwhile and is replayed at the end; the exit
// status is the command's (128 + the signal's number when it killed it).
inline std::string signalOnceFileMatches(const std::string& signal, const std::filesystem::path& watched,
                                         const std::string& pattern, double delay,
                                         const std::filesystem::path& scratch) {
  return "sh -c 'out=$1; watched=$2; pattern=$3; delay=$4; signal=$5; shift 5; \"$@\" > \"$out\" 2>&1 & p=$!; "
         "until grep -qE \"$pattern\" \"$watched\" 2>/dev/null || ! kill -0 $p 2>/dev/null; do sleep 0.05; done; "
         "sleep $delay; kill -$signal $p 2>/dev/null; wait $p; s=$?; cat \"$out\"; exit $s' sh '" +
         scratch.string() + "' '" + watched.string() + "' '" + pattern + "' " + std::to_string(delay) + " " + signal;
}

// SIGINT (Ctrl-C) once the command's own output matches `pattern`.
inline std::string interruptOnceOutputMatches(const std::string& pattern, const std::filesystem::path& scratch) {
  return signalOnceFileMatches("INT", scratch, pattern, 0, scratch);
}

}  // namespace stylize::test
