// Helpers shared by the test suites: scratch folders, shared-data lookup, running the CLI.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

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

struct CommandResult {
  int exitCode;
  std::string output;  // stdout and stderr
};

// Runs `stylize <args>` with a private cache folder.
inline CommandResult runStylize(const std::string& args, const std::filesystem::path& cache) {
  const std::string command = "XDG_CACHE_HOME='" + cache.string() + "' '" STYLIZE_BINARY "' " + args + " 2>&1";
  CommandResult result{-1, {}};
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace stylize::test
