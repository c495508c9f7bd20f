#include "data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <iostream>
#include <mutex>
#include <random>
#include <set>

#include "data/error.h"
#include "data/image.h"

namespace fs = std::filesystem;

namespace stylize {
namespace {

bool isPhoto(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp";
}

uint64_t mix(uint64_t a, uint64_t b) {  // splitmix64 of a combined key: independent streams per item
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B9D5A5ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The endless, epoch-wise shuffled sequence of photo indices. Keeps the last epoch's permutation, so a
// batch shuffles once rather than once per photo.
class ShuffledOrder {
 public:
  ShuffledOrder(size_t count, uint64_t seed) : count_(count), seed_(seed) {}
  size_t at(int64_t sample) {
    const int64_t epoch = sample / static_cast<int64_t>(count_);
    if (epoch != epoch_) {
      order_.resize(count_);
      for (size_t i = 0; i < count_; ++i) order_[i] = i;
      std::mt19937_64 rng(mix(seed_, static_cast<uint64_t>(epoch)));
      std::shuffle(order_.begin(), order_.end(), rng);
      epoch_ = epoch;
    }
    return order_[sample % static_cast<int64_t>(count_)];
  }

 private:
  size_t count_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<size_t> order_;
};

torch::Tensor randomResizedCrop(const torch::Tensor& image, int64_t size, double minArea, uint64_t key) {
  std::mt19937_64 rng(key);
  std::uniform_real_distribution<double> area(minArea, 1.0), logRatio(std::log(3.0 / 4), std::log(4.0 / 3)), unit(0, 1);
  const int64_t h = image.size(1), w = image.size(2);
  int64_t ch = h, cw = w;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double a = area(rng) * h * w, r = std::exp(logRatio(rng));
    const int64_t tw = std::lround(std::sqrt(a * r)), th = std::lround(std::sqrt(a / r));
    if (tw <= w && th <= h && tw > 0 && th > 0) {
      cw = tw;
      ch = th;
      break;
    }
    cw = ch = std::min(h, w);  // fallback: the largest centred square
  }
  const int64_t y = static_cast<int64_t>(unit(rng) * (h - ch + 1) * 0.999999);
  const int64_t x = static_cast<int64_t>(unit(rng) * (w - cw + 1) * 0.999999);
  using torch::indexing::Slice;
  torch::Tensor crop = resizeImage(image.index({Slice(), Slice(y, y + ch), Slice(x, x + cw)}), size, size);
  return unit(rng) < 0.5 ? crop.flip({2}) : crop;
}

}  // namespace

ImageFolder::ImageFolder(const fs::path& root) : root_(root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error(root.string() + ": not a folder of training photos");
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && isPhoto(it->path())) files_.push_back(it->path());
  }
  if (files_.empty()) throw Error(root.string() + ": no photos (.jpg .jpeg .png .webp) found");
  std::sort(files_.begin(), files_.end());
}

std::vector<fs::path> ImageFolder::holdOut(size_t count) {
  count = std::min(count, files_.size() / 2);
  std::vector<fs::path> held;
  for (size_t i = 0; i < count; ++i) {
    const size_t index = (i + 1) * files_.size() / (count + 1) - i;  // positions shift as files are removed
    held.push_back(files_[index]);
    files_.erase(files_.begin() + static_cast<std::ptrdiff_t>(index));
  }
  return held;
}

torch::Tensor BatchLoader::makeBatch(const std::vector<fs::path>& files, const BatchOptions& options, int64_t index,
                                     std::atomic<int64_t>* skipped) {
  static std::mutex warnMutex;
  std::vector<torch::Tensor> items;
  const int64_t first = index * options.batchSize;
  ShuffledOrder order(files.size(), options.seed);
  // A photo that fails is replaced by the one this slot would get a batch later in the shuffle; give up
  // only when none of a whole epoch's worth can be read. Each slot on its own, so that a shard is the
  // same slice of the batch whatever the other shards met.
  const int64_t end = options.shardSize > 0 ? options.shardBegin + options.shardSize : options.batchSize;
  if (options.shardBegin < 0 || end > options.batchSize) throw Error("makeBatch: shard outside the batch");
  if (!(options.minCropArea > 0 && options.minCropArea <= 1)) throw Error("the smallest crop area must be in (0, 1]");
  for (int64_t i = options.shardBegin; i < end; ++i) {
    for (int64_t shift = 0;;) {
      const int64_t sample = first + i + shift * static_cast<int64_t>(options.batchSize);
      const fs::path& file = files[order.at(sample)];
      try {
        items.push_back(randomResizedCrop(loadImage(file), options.imageSize, options.minCropArea,
                                          mix(options.seed ^ 0xC0FFEE, sample)));
        break;
      } catch (const Error& e) {
        if (skipped) skipped->fetch_add(1);
        std::lock_guard<std::mutex> lock(warnMutex);
        std::cerr << "stylize: warning: skipping " << e.what() << "\n";
      }
      if (++shift > static_cast<int64_t>(files.size()))
        throw Error("no readable photo among " + std::to_string(files.size()));
    }
  }
  return torch::stack(items);
}

BatchLoader::BatchLoader(const ImageFolder& folder, BatchOptions options, int64_t firstBatch)
    : files_(folder.files()),
      options_(options),
      nextIndex_(firstBatch),
      skipped_(std::make_shared<std::atomic<int64_t>>(0)) {}

BatchLoader::~BatchLoader() {
  for (auto& f : pending_)
    if (f.valid()) f.wait();
}

torch::Tensor BatchLoader::next() {
  while (static_cast<int>(pending_.size()) < std::max(1, options_.prefetch)) {
    const int64_t index = nextIndex_ + static_cast<int64_t>(pending_.size());
    pending_.push_back(std::async(std::launch::async, [files = &files_, options = options_, index, skipped = skipped_] {
      return makeBatch(*files, options, index, skipped.get());
    }));
  }
  torch::Tensor batch = pending_.front().get();
  pending_.pop_front();
  ++nextIndex_;
  return batch;
}

}  // namespace stylize
