// Feed-forward training (Johnson et al. 2016): a TransformerNet learns to minimise the perceptual loss of
// its outputs against one style and each batch's content. Checkpoints hold everything a resumed run
// needs (weights, Adam state, RNG state, iteration), so `resume` continues as if never stopped.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "data/image_folder.h"
#include "nets/transformer_net.h"
#include "train/perceptual_loss.h"
#include "train/temporal_loss.h"
#include "train/training_group.h"

namespace stylize {

struct TrainOptions {
  TransformerConfig architecture;
  int64_t iterations = 40000;
  BatchOptions batches;  // batch size, crop size, seed, prefetch
  double learningRate = 1e-3;
  double finalLearningRate = 1.0;    // fraction of learningRate reached at the end (cosine); 1 = constant
  int64_t checkpointEvery = 1000;    // 0 = only at the end and on interruption
  std::filesystem::path checkpoint;  // where checkpoints go (atomically replaced)
  double temporalWeight = 0;         // weight of temporalLoss() (0 = per-frame training)
  double temporalNoise = 0.02;       // std of the noise added to the moved copy
  int temporalJpeg = 0;              // lowest JPEG quality the moved copy is compressed at (0 = not compressed)
  MotionRange temporalMotion;        // the random motions of the moved copy
  // Weight of the penalty on output pixels pushed deep into the tanh's flat tails (|pre-activation| > 2.5,
  // i.e. within 1.7/255 of black or white): there the gradient vanishes, so a patch that once saturates stays
  // a flat black or white blob for the rest of training. 0 = off.
  double saturationWeight = 10;
};

struct TrainProgress {
  int64_t iteration = 0, iterations = 0;
  LossValues loss;
  double learningRate = 0;
  int64_t skippedPhotos = 0;
};

class Trainer {
 public:
  // The loss must have its style set. `info` is stored in checkpoints (and later in the model file).
  Trainer(PerceptualLoss& loss, TrainOptions options, nlohmann::json info = {});

  // Restores weights, Adam state, RNG and iteration; throws Error if the checkpoint does not match
  // the architecture or is damaged.
  void resume(const std::filesystem::path& checkpoint);

  // The architecture a checkpoint was trained with, so that --resume needs no --width/--blocks.
  static TransformerConfig checkpointArchitecture(const std::filesystem::path& checkpoint);

  // Trains on `photos` until `iterations`, or until `stop` becomes true (then writes a checkpoint and
  // returns false).
  bool run(const ImageFolder& photos, const std::function<void(const TrainProgress&)>& onIteration,
           const std::atomic<bool>& stop);

  // One optimisation step on a batch of content photos (on the loss network's device), at the current
  // learning rate; what run() does per iteration, exposed for benchmarks.
  LossTerms step(const torch::Tensor& content);

  // Starts from a trained model's weights (same architecture), e.g. to fine-tune it for temporal stability.
  void initFrom(TransformerNet& trained);

  // Data-parallel from here on: every rank takes rank 0's weights, then trains its shard of each batch
  // (options.batches.batchSize is the global batch, split evenly) and averages gradients with the others,
  // so the run equals one process training the whole batch. Only rank 0 writes checkpoints. Call after
  // initFrom()/resume(); the group must outlive run().
  void joinGroup(TrainingGroup& group);

  void saveCheckpoint(const std::filesystem::path& path);
  TransformerNet& net() { return net_; }
  int64_t iteration() const { return iteration_; }
  // Wall time spent training, summed over every resumed run (kept in checkpoints).
  double elapsedSeconds() const;

 private:
  double learningRateAt(int64_t iteration) const;
  // One step; with a group, `stopRequested` travels with the gradients and `stopAll` says whether any rank
  // asked to stop (all ranks then stop after this same step).
  LossTerms step(const torch::Tensor& content, bool stopRequested, bool& stopAll);

  PerceptualLoss& loss_;
  TrainOptions options_;
  nlohmann::json info_;
  TransformerNet net_{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer_;
  TrainingGroup* group_ = nullptr;
  int64_t iteration_ = 0;
  double seconds_ = 0;  // before the current run()
  std::optional<std::chrono::steady_clock::time_point> runStart_;
};

}  // namespace stylize
