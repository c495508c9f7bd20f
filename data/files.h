// Whole-file I/O that never leaves a half-written output behind.
#pragma once

#include <filesystem>
#include <string>

namespace stylize {

// Reads the whole file; throws Error("<path>: ...") when missing, unreadable or a directory.
std::string readFile(const std::filesystem::path& path);

// Writes to a temporary name in the destination folder, flushes, then renames over `path`, so readers
// see either the old file or the complete new one, also after a crash or Ctrl-C.
void writeFileAtomically(const std::filesystem::path& path, const std::string& bytes);

// Checks before any work starts that `path` can be created: its folder exists and is writable.
void checkWritable(const std::filesystem::path& path);

// A temporary name beside `path` (same folder, so rename() is atomic), unique per process and call.
std::filesystem::path temporarySibling(const std::filesystem::path& path);

// A 64-bit FNV-1a digest as 16 hex digits: identifies file contents for caches and model metadata.
std::string fingerprint(const std::string& bytes);

}  // namespace stylize
