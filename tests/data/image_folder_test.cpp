#include "data/image_folder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/error.h"
#include "data/files.h"
#include "data/image.h"
#include "tests/test_util.h"

namespace stylize {
namespace {

void makePhotos(const test::TempDir& dir, int count) {
  std::filesystem::create_directories(dir / "sub");
  for (int i = 0; i < count; ++i)
    saveImage(dir / ((i % 2 ? "sub/p" : "p") + std::to_string(i) + ".png"), torch::rand({3, 40 + i, 50}));
}

TEST(ImageFolder, FindsPhotosRecursivelyAndHoldsSomeOut) {
  test::TempDir dir;
  makePhotos(dir, 10);
  writeFileAtomically(dir / "notes.txt", "not a photo");
  ImageFolder folder(dir.path());
  EXPECT_EQ(folder.files().size(), 10u);
  const auto held = folder.holdOut(3);
  EXPECT_EQ(held.size(), 3u);
  EXPECT_EQ(folder.files().size(), 7u);
  for (const auto& h : held) EXPECT_EQ(std::count(folder.files().begin(), folder.files().end(), h), 0);
  EXPECT_THROW(ImageFolder(dir / "missing"), Error);
  test::TempDir empty;
  EXPECT_THROW(ImageFolder(empty.path()), Error);
}

TEST(BatchLoader, BatchesAreDeterministicAndIndependentOfThreads) {
  test::TempDir dir;
  makePhotos(dir, 6);
  ImageFolder folder(dir.path());
  BatchOptions options{3, 24, 42, 3};
  BatchLoader loader(folder, options);
  const torch::Tensor b0 = loader.next(), b1 = loader.next(), b2 = loader.next();
  EXPECT_EQ(b0.sizes(), torch::IntArrayRef({3, 3, 24, 24}));
  EXPECT_TRUE(torch::equal(b1, BatchLoader::makeBatch(folder.files(), options, 1, nullptr)));
  BatchLoader resumed(folder, options, 2);  // as after a resume at batch 2
  EXPECT_TRUE(torch::equal(resumed.next(), b2));
  EXPECT_FALSE(torch::equal(b0, b1));
  options.seed = 43;
  EXPECT_FALSE(torch::equal(BatchLoader::makeBatch(folder.files(), options, 0, nullptr), b0));
}

TEST(BatchLoader, SmallerCropAreaZoomsIn) {
  // A horizontal ramp 0..1: the span of values in a crop is the fraction of the photo's width it covers.
  test::TempDir dir;
  const torch::Tensor ramp = torch::linspace(0, 1, 100).view({1, 1, 100}).expand({3, 100, 100}).contiguous();
  saveImage(dir / "ramp.png", ramp);
  ImageFolder folder(dir.path());
  auto spans = [&](double minArea) {
    BatchOptions options{64, 32, 5, 1};
    options.minCropArea = minArea;
    const torch::Tensor batch = BatchLoader::makeBatch(folder.files(), options, 0, nullptr);
    return (batch.amax({1, 2, 3}) - batch.amin({1, 2, 3}));
  };
  // 34-100 % of the area at aspect 3:4-4:3 covers at least sqrt(0.34 * 3/4) = 50 % of the width.
  EXPECT_GT(spans(0.34).min().item<float>(), 0.45f);
  const torch::Tensor zoomed = spans(0.02);
  EXPECT_LT(zoomed.min().item<float>(), 0.3f);   // some crops are close-ups
  EXPECT_GT(zoomed.max().item<float>(), 0.45f);  // and some still see most of the photo
  BatchOptions bad{1, 32, 5, 1};
  bad.minCropArea = 0;
  EXPECT_THROW(BatchLoader::makeBatch(folder.files(), bad, 0, nullptr), Error);
}

TEST(BatchLoader, CorruptPhotosAreSkippedAndCounted) {
  test::TempDir dir;
  makePhotos(dir, 4);
  writeFileAtomically(dir / "broken.jpg", "\xFF\xD8 not a jpeg at all");
  writeFileAtomically(dir / "empty.png", "");
  ImageFolder folder(dir.path());
  ASSERT_EQ(folder.files().size(), 6u);
  BatchLoader loader(folder, BatchOptions{4, 16, 1, 2});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(loader.next().size(0), 4);  // 4 epochs: every broken file was met
  EXPECT_GT(loader.skipped(), 0);
}

// Data-parallel training loads one shard of each batch per rank: the shards, side by side, are the batch,
// also where a broken photo had to be replaced.
TEST(BatchLoader, ShardsAreSlicesOfTheWholeBatch) {
  test::TempDir dir;
  makePhotos(dir, 5);
  writeFileAtomically(dir / "broken.jpg", "\xFF\xD8 not a jpeg at all");
  ImageFolder folder(dir.path());
  BatchOptions whole{4, 16, 7, 1};
  for (int64_t index = 0; index < 6; ++index) {
    const torch::Tensor batch = BatchLoader::makeBatch(folder.files(), whole, index, nullptr);
    for (const int64_t shards : {2, 4}) {
      std::vector<torch::Tensor> parts;
      for (int64_t rank = 0; rank < shards; ++rank) {
        BatchOptions shard = whole;
        shard.shardSize = whole.batchSize / shards;
        shard.shardBegin = rank * shard.shardSize;
        parts.push_back(BatchLoader::makeBatch(folder.files(), shard, index, nullptr));
      }
      EXPECT_TRUE(torch::equal(torch::cat(parts), batch)) << "batch " << index << ", " << shards << " shards";
    }
  }
}

}  // namespace
}  // namespace stylize
