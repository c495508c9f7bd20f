#include "data/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/error.h"
#include "data/files.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

std::string withHeader(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(json.size()) >> (8 * i)) & 0xff);
  return out + json + data;
}

void expectRejected(const std::string& bytes, const std::string& fragment) {
  try {
    parseSafetensors(bytes, "bad.safetensors");
    FAIL() << "accepted a malformed file; expected: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripsTensorsAndMetadata) {
  test::TempDir dir;
  Safetensors file;
  file.tensors["a"] = torch::arange(12, torch::kFloat32).reshape({3, 4});
  file.tensors["b"] = torch::tensor({1, -2, 3}, torch::kInt64);
  file.tensors["half"] = torch::randn({5}).to(torch::kFloat16);
  file.tensors["empty"] = torch::empty({0, 3});
  file.metadata["format"] = "stylize";
  writeSafetensors(dir / "x.safetensors", file);
  const Safetensors back = readSafetensors(dir / "x.safetensors");
  ASSERT_EQ(back.tensors.size(), 4u);
  for (const auto& [name, t] : file.tensors) {
    EXPECT_EQ(back.tensors.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back.tensors.at(name), t)) << name;
  }
  EXPECT_EQ(back.metadata.at("format"), "stylize");
}

TEST(Safetensors, DataIsEightByteAligned) {
  Safetensors file;
  file.tensors["x"] = torch::ones({3});
  const std::string bytes = serializeSafetensors(file);
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i) headerSize = (headerSize << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(headerSize % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + headerSize + 12);
}

TEST(Safetensors, ParsesAFileWrittenByTheReferenceLayout) {
  // Two F32 values 1.0 and 2.0 as the Python library lays them out.
  const std::string data("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  const auto file =
      parseSafetensors(withHeader(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data), "ok");
  EXPECT_TRUE(torch::equal(file.tensors.at("w"), torch::tensor({1.0f, 2.0f})));
}

TEST(Safetensors, RejectsMalformedHeaders) {
  const std::string eight(8, '\0');
  expectRejected("abc", "too short");
  expectRejected(withHeader("{}", "").substr(0, 4), "too short");
  std::string huge = withHeader("{}", "");
  huge[5] = 1;  // header length far beyond the file
  expectRejected(huge, "exceeds the file");
  expectRejected(withHeader("{not json", ""), "not valid JSON");
  expectRejected(withHeader("[1,2]", ""), "not a JSON object");
  expectRejected(withHeader(R"({"w":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", eight), "unsupported dtype");
  expectRejected(withHeader(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight), "negative");
  expectRejected(withHeader(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", eight), "non-integer");
  expectRejected(withHeader(R"({"w":{"dtype":"F32","shape":[2]}})", eight), "data_offsets");
  expectRejected(withHeader(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", eight), "outside");
  expectRejected(withHeader(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight), "outside");
  expectRejected(withHeader(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight), "bytes");
  expectRejected(withHeader(R"({"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})", eight),
                 "overflows");
  expectRejected(withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            eight),
                 "overlap");
  expectRejected(withHeader(R"({"__metadata__":{"k":3}})", ""), "not a string");
}

TEST(Safetensors, EveryTruncationIsAnErrorNotACrash) {
  Safetensors file;
  file.tensors["a"] = torch::randn({4, 4});
  file.tensors["b"] = torch::randn({7});
  const std::string bytes = serializeSafetensors(file);
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_THROW(parseSafetensors(bytes.substr(0, n), "cut"), Error) << n;
}

TEST(Safetensors, MissingFileNamesThePath) {
  try {
    readSafetensors("/nonexistent/weights.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/weights.safetensors: no such file");
  }
}

TEST(Files, AtomicWriteLeavesNoTemporaryAndReplacesWhole) {
  test::TempDir dir;
  writeFileAtomically(dir / "f.bin", "first");
  writeFileAtomically(dir / "f.bin", "second");
  EXPECT_EQ(readFile(dir / "f.bin"), "second");
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1);
  EXPECT_THROW(writeFileAtomically(dir / "missing-folder" / "f.bin", "x"), Error);
}

TEST(Files, FingerprintDiffersForDifferentBytes) {
  EXPECT_EQ(fingerprint("abc"), fingerprint("abc"));
  EXPECT_NE(fingerprint("abc"), fingerprint("abd"));
  EXPECT_EQ(fingerprint("").size(), 16u);
}

}  // namespace
}  // namespace stylize
