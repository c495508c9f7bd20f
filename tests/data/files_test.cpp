#include "data/files.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "data/error.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace stylize {
namespace {

void touch(const fs::path& path) { std::ofstream(path) << "x"; }

TEST(Files, SameFileSeesThroughSpellingsLinksAndHardLinks) {
  test::TempDir dir;
  fs::create_directories(dir / "in");
  touch(dir / "in" / "x.mp4");
  touch(dir / "other.mp4");
  fs::create_symlink(dir / "in" / "x.mp4", dir / "link.mp4");
  fs::create_hard_link(dir / "in" / "x.mp4", dir / "hard.mp4");
  const fs::path x = dir / "in" / "x.mp4";
  EXPECT_TRUE(sameFile(x, dir / "in" / ".." / "in" / "x.mp4"));
  EXPECT_TRUE(sameFile(x, dir / "link.mp4"));
  EXPECT_TRUE(sameFile(x, dir / "hard.mp4"));
  EXPECT_FALSE(sameFile(x, dir / "other.mp4"));
  EXPECT_FALSE(sameFile(x, dir / "missing.mp4"));  // a new output is never an input

  try {
    checkNotAnInput(dir / "link.mp4", {dir / "other.mp4", x});
    FAIL() << "a symlink to the input was accepted as output";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("would overwrite the input"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(checkNotAnInput(dir / "new.mp4", {x}));
}

TEST(Files, TemporariesOfDeadProcessesAreRemovedOnTheNextWrite) {
  test::TempDir dir;
  // A PID that certainly ran and is gone: a child that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  const fs::path out = dir / "out.png";
  const fs::path stale = dir / ("out.png.tmp-" + std::to_string(child) + "-0");
  const fs::path live = dir / ("out.png.tmp-" + std::to_string(::getppid()) + "-3");  // a running process
  const fs::path foreign = dir / "out.png.tmp-notours";
  const fs::path otherFile = dir / ("else.png.tmp-" + std::to_string(child) + "-0");
  for (const auto& p : {stale, live, foreign, otherFile}) touch(p);

  writeFileAtomically(out, "done");
  EXPECT_EQ(readFile(out), "done");
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(foreign));
  EXPECT_TRUE(fs::exists(otherFile));  // only the temporaries of the file being written are touched
}

}  // namespace
}  // namespace stylize
