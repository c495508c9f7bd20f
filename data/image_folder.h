// Training photos: a folder scanned recursively, served as random crops in batches by background threads.
#pragma once

#include <torch/types.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <vector>

namespace stylize {

class ImageFolder {
 public:
  // JPEG, PNG and WebP files below `root`, sorted. Throws Error when the folder is missing or holds none.
  explicit ImageFolder(const std::filesystem::path& root);
  const std::vector<std::filesystem::path>& files() const { return files_; }
  // Removes `count` photos, spread evenly over the sorted list, and returns them: fixed held-out images
  // for validation that training never sees.
  std::vector<std::filesystem::path> holdOut(size_t count);
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  std::vector<std::filesystem::path> files_;
};

struct BatchOptions {
  int64_t batchSize = 4;
  int64_t imageSize = 256;  // square crops
  uint64_t seed = 0;
  int prefetch = 4;  // batches prepared ahead, each on its own thread
  // Data-parallel training: this process loads only the photos [shardBegin, shardBegin + shardSize) of each
  // batch (0 = all of it); the batch itself, and so every photo's crop, stays the same for any split.
  int64_t shardBegin = 0, shardSize = 0;
  // Smallest crop as a fraction of the photo's area (torchvision's RandomResizedCrop scale). Smaller crops
  // are zoomed-in views: a network trained on them also sees the large flat areas and soft detail that a
  // 1080p frame or a 12-megapixel photo shows it at inference.
  double minCropArea = 0.34;
};

// Batch i is a pure function of (files, options, i): an epoch-wise shuffle, then for each photo a random
// resized crop (minCropArea–100 % of the area, aspect 3:4–4:3) and a random horizontal flip. So a run is
// reproducible under any thread count, and resuming at batch i gives the batches an uninterrupted run
// would have seen. An unreadable photo is skipped (the next one in the shuffle takes its place) and
// counted; it never stops a run.
class BatchLoader {
 public:
  BatchLoader(const ImageFolder& folder, BatchOptions options, int64_t firstBatch = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  torch::Tensor next();  // [shardSize or batchSize, 3, imageSize, imageSize] in [0, 1]
  int64_t skipped() const { return skipped_->load(); }

  // The same computation without threads (tests, and one-off batches).
  static torch::Tensor makeBatch(const std::vector<std::filesystem::path>& files, const BatchOptions& options,
                                 int64_t index, std::atomic<int64_t>* skipped);

 private:
  std::vector<std::filesystem::path> files_;
  BatchOptions options_;
  int64_t nextIndex_;
  std::shared_ptr<std::atomic<int64_t>> skipped_;
  std::deque<std::future<torch::Tensor>> pending_;
};

}  // namespace stylize
