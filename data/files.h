// Whole-file I/O that never leaves a half-written output behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace stylize {

// Reads the whole file; throws Error("<path>: ...") when missing, unreadable or a directory.
std::string readFile(const std::filesystem::path& path);

// Writes to a temporary name in the destination folder, flushes, then renames over `path`, so readers
// see either the old file or the complete new one, also after a crash or Ctrl-C.
void writeFileAtomically(const std::filesystem::path& path, const std::string& bytes);

// Checks before any work starts that `path` can be created: its folder exists and is writable.
void checkWritable(const std::filesystem::path& path);

// A temporary name beside `path` (same folder, so rename() is atomic), unique per process and call:
// PATH.tmp-PID-N. Temporaries of that form left by a process that no longer runs (killed with SIGKILL,
// a power cut) are removed first, so a crash costs no more than one rerun.
std::filesystem::path temporarySibling(const std::filesystem::path& path);

// True when both paths name one existing file however they are spelled: another relative path, `..`,
// a symlink or a hard link (same device and inode).
bool sameFile(const std::filesystem::path& a, const std::filesystem::path& b);

// Throws Error("OUT: the output would overwrite the input IN") when `output` is one of `inputs`.
void checkNotAnInput(const std::filesystem::path& output, const std::vector<std::filesystem::path>& inputs);

// The same check for many outputs against many inputs (`stylize image` on a folder of thousands): each
// input is looked up once, so N outputs cost N stat calls, not N².
class InputFiles {
 public:
  explicit InputFiles(const std::vector<std::filesystem::path>& inputs);
  void checkNotAnInput(const std::filesystem::path& output) const;

 private:
  std::map<std::pair<uint64_t, uint64_t>, std::filesystem::path> byIdentity_;  // (device, inode)
  std::map<std::filesystem::path, std::filesystem::path> byName_;
};

// A 64-bit FNV-1a digest as 16 hex digits: identifies file contents for caches and model metadata.
std::string fingerprint(const std::string& bytes);

}  // namespace stylize
