#include "data/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "data/error.h"

namespace fs = std::filesystem;

namespace stylize {

std::string readFile(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path.string() + ": no such file");
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(path.string() + ": read failed");
  return std::move(buffer).str();
}

namespace {

// PATH.tmp-PID-N files whose process is gone. Only our own naming is touched, and only beside `path`.
void removeStaleTemporaries(const fs::path& path) {
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const std::string prefix = path.filename().string() + ".tmp-";
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // "PID-N"
    const size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789-") != std::string::npos) continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    fs::remove(it->path(), ignored);
  }
}

}  // namespace

bool sameFile(const fs::path& a, const fs::path& b) {
  struct stat sa {
  }, sb{};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void checkNotAnInput(const fs::path& output, const std::vector<fs::path>& inputs) {
  InputFiles(inputs).checkNotAnInput(output);
}

InputFiles::InputFiles(const std::vector<fs::path>& inputs) {
  for (const fs::path& input : inputs) {
    byName_.emplace(input, input);
    struct stat st {};
    if (::stat(input.c_str(), &st) == 0)
      byIdentity_.emplace(std::make_pair(uint64_t(st.st_dev), uint64_t(st.st_ino)), input);
  }
}

void InputFiles::checkNotAnInput(const fs::path& output) const {
  auto input = byName_.find(output);
  struct stat st {};
  if (input == byName_.end() && ::stat(output.c_str(), &st) == 0) {
    const auto same = byIdentity_.find({uint64_t(st.st_dev), uint64_t(st.st_ino)});
    if (same != byIdentity_.end()) input = byName_.find(same->second);
  }
  if (input != byName_.end())
    throw Error(output.string() + ": the output would overwrite the input " + input->second.string());
}

fs::path temporarySibling(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  removeStaleTemporaries(path);
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  return tmp;
}

void checkWritable(const fs::path& path) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error(path.string() + ": " + dir.string() + " is a file, not a folder");
  if (!fs::is_directory(dir, ec)) throw Error(path.string() + ": folder " + dir.string() + " does not exist");
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a directory, expected a file name");
  if (::access(dir.c_str(), W_OK) != 0) throw Error(path.string() + ": folder " + dir.string() + " is not writable");
}

void writeFileAtomically(const fs::path& path, const std::string& bytes) {
  checkWritable(path);
  const fs::path tmp = temporarySibling(path);
  {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw Error(path.string() + ": cannot create " + tmp.string() + " (" + std::strerror(errno) + ")");
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
                    ::fsync(::fileno(f)) == 0;
    const int err = errno;
    if (std::fclose(f) != 0 || !ok) {
      std::remove(tmp.c_str());
      throw Error(path.string() + ": write failed (" + std::strerror(err) + ")");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(path.string() + ": cannot rename temporary file (" + ec.message() + ")");
  }
}

std::string fingerprint(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace stylize
