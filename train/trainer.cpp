#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "data/error.h"
#include "data/image.h"
#include "data/safetensors.h"
#include "nets/style_model.h"
#include "train/temporal_loss.h"

namespace stylize {
namespace {

torch::Tensor bytesToTensor(const std::string& bytes) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

std::string tensorToBytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().to(torch::kUInt8);
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel());
}

}  // namespace

Trainer::Trainer(PerceptualLoss& loss, TrainOptions options, nlohmann::json info)
    : loss_(loss), options_(std::move(options)), info_(std::move(info)) {
  if (options_.iterations < 1) throw Error("--iterations must be at least 1");
  if (options_.batches.batchSize < 1 || options_.batches.batchSize > 256) throw Error("--batch-size must be 1..256");
  if (options_.batches.imageSize < TransformerNetImpl::kMinSide || options_.batches.imageSize > 2048)
    throw Error("--image-size must be 16..2048");
  if (!(options_.learningRate > 0)) throw Error("--lr must be positive");
  torch::manual_seed(options_.batches.seed);
  net_ = TransformerNet(options_.architecture);
  net_->to(loss_.vgg().device());
  optimizer_ =
      std::make_unique<torch::optim::Adam>(net_->parameters(), torch::optim::AdamOptions(options_.learningRate));
}

double Trainer::learningRateAt(int64_t iteration) const {
  const double t = static_cast<double>(iteration) / static_cast<double>(options_.iterations);
  const double f = options_.finalLearningRate;
  return options_.learningRate * (f + (1 - f) * 0.5 * (1 + std::cos(M_PI * t)));
}

bool Trainer::run(const ImageFolder& photos, const std::function<void(const TrainProgress&)>& onIteration,
                  const std::atomic<bool>& stop) {
  const torch::Device device = loss_.vgg().device();
  runStart_ = std::chrono::steady_clock::now();
  struct EndRun {  // fold this run's time into seconds_ on every way out
    Trainer& t;
    ~EndRun() {
      t.seconds_ = t.elapsedSeconds();
      t.runStart_.reset();
    }
  } endRun{*this};
  BatchOptions batches = options_.batches;
  if (group_) {
    batches.shardSize = batches.batchSize / group_->size();
    batches.shardBegin = group_->rank() * batches.shardSize;
  }
  BatchLoader loader(photos, batches, iteration_);
  net_->train();
  while (iteration_ < options_.iterations) {
    if (!group_ && stop.load()) {  // (a group decides together, in step())
      saveCheckpoint(options_.checkpoint);
      return false;
    }
    const double lr = learningRateAt(iteration_);
    for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    bool stopAll = false;
    const LossTerms terms = step(loader.next().to(device), stop.load(), stopAll);
    ++iteration_;

    if (onIteration) {
      TrainProgress p;
      p.iteration = iteration_;
      p.iterations = options_.iterations;
      p.loss = LossValues::of(terms);
      p.learningRate = lr;
      p.skippedPhotos = loader.skipped();
      onIteration(p);
    }
    if (stopAll && iteration_ < options_.iterations) {
      saveCheckpoint(options_.checkpoint);
      return false;
    }
    if (options_.checkpointEvery > 0 && iteration_ % options_.checkpointEvery == 0 && iteration_ < options_.iterations)
      saveCheckpoint(options_.checkpoint);
  }
  return true;
}

LossTerms Trainer::step(const torch::Tensor& content) {
  bool stopAll = false;
  return step(content, false, stopAll);
}

LossTerms Trainer::step(const torch::Tensor& content, bool stopRequested, bool& stopAll) {
  optimizer_->zero_grad();
  torch::Tensor pre;
  const torch::Tensor output = net_->forward(content, &pre);
  LossTerms terms = loss_(output, loss_.contentTargets(content));
  if (options_.saturationWeight > 0 && pre.defined())  // undefined: an unbounded (imported) network
    terms.total = terms.total + options_.saturationWeight * torch::relu(pre.abs() - 2.5).pow(2).mean();
  if (options_.temporalWeight > 0) {
    // A second pass on a moved, noisy copy; the loss asks it to match the moved output of the first.
    // Its randomness is drawn for the whole batch from a seed of (seed, iteration) and this shard's rows
    // taken: like the photos, a pure function of the batch index for any number of ranks.
    torch::manual_seed(options_.batches.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(iteration_));
    const int64_t n = content.size(0), h = content.size(2), w = content.size(3);
    const int64_t ranks = group_ ? group_->size() : 1, first = group_ ? group_->rank() * n : 0;
    const torch::Tensor motion = randomMotion(n * ranks, h, w, options_.temporalMotion).narrow(0, first, n);
    const torch::Tensor noise = torch::randn({n * ranks, content.size(1), h, w}).narrow(0, first, n);
    const MotionKind kind = options_.temporalMotion.kind;
    torch::Tensor moved =
        moveImages(content, motion.to(content.device()), kind) + noise.to(content.device()) * options_.temporalNoise;
    if (options_.temporalJpeg > 0) {
      // A codec requantises every frame anew: the moved copy goes through JPEG at a random quality.
      const int quality = int(torch::randint(options_.temporalJpeg, 96, {1}, torch::kInt64).item<int64_t>());
      moved = jpegRoundTrip(moved, quality);
    }
    const int64_t margin = kind == MotionKind::kSubpixel ? 2 : 0;
    terms.temporal = options_.temporalWeight * temporalLoss(net_->forward(moved), moveImages(output, motion, kind),
                                                            warpValidMask(motion, h, w, content.device(), margin));
    terms.total = terms.total + terms.temporal;
  }
  terms.total.backward();
  if (group_) {
    // The loss terms and the stop request ride in the gradients' all-reduce: no second collective.
    std::vector<torch::Tensor*> logged{&terms.content, &terms.style, &terms.tv, &terms.temporal, &terms.total};
    std::vector<double> extras;
    for (const torch::Tensor* t : logged) extras.push_back(t->defined() ? t->detach().item<double>() : 0.0);
    extras.push_back(stopRequested ? 1.0 : 0.0);
    group_->averageGradients(net_->parameters(), extras, iteration_);
    for (size_t i = 0; i < logged.size(); ++i)
      if (logged[i]->defined()) *logged[i] = torch::tensor(extras[i] / group_->size());
    stopAll = extras.back() > 0;
  } else {
    stopAll = stopRequested;
  }
  optimizer_->step();
  return terms;
}

void Trainer::joinGroup(TrainingGroup& group) {
  if (options_.batches.batchSize % group.size() != 0)
    throw Error(
        fmt::format("--batch-size {} does not split evenly over {} ranks", options_.batches.batchSize, group.size()));
  group_ = &group;
  group.broadcast(net_->parameters());
}

double Trainer::elapsedSeconds() const {
  return seconds_ +
         (runStart_ ? std::chrono::duration<double>(std::chrono::steady_clock::now() - *runStart_).count() : 0.0);
}

void Trainer::initFrom(TransformerNet& trained) {
  torch::NoGradGuard noGrad;
  if (trained->config().type != net_->config().type || trained->config().width != net_->config().width ||
      trained->config().blocks > net_->config().blocks)
    throw Error("--init-model: the model's architecture differs from --architecture/--width/--blocks (" +
                architectureName(trained->config().type) + " " + std::to_string(trained->config().width) + "/" +
                std::to_string(trained->config().blocks) + "; only more --blocks can be added)");
  auto source = trained->named_parameters();
  for (auto& p : net_->named_parameters()) {
    if (const torch::Tensor* t = source.find(p.key())) {
      TORCH_CHECK(t->sizes() == p.value().sizes(), "initFrom: ", p.key(), " differs in shape");
      p.value().copy_(*t);
      continue;
    }
    // A residual block the trained model lacks (a deeper --blocks) starts as the identity: the scale and
    // shift of its last norm are zero, so the grown network computes exactly what the trained one did
    // (the zero-γ init of Goyal et al. 2017) and training deepens it from there.
    TORCH_CHECK(p.key().find("residuals.") != std::string::npos, "initFrom: ", p.key(), " missing");
    auto endsWith = [&](const std::string& tail) {
      return p.key().size() >= tail.size() && p.key().compare(p.key().size() - tail.size(), tail.size(), tail) == 0;
    };
    if (endsWith("in2.weight") || endsWith("in2.bias")) p.value().zero_();
  }
}

void Trainer::saveCheckpoint(const std::filesystem::path& path) {
  if (path.empty() || (group_ && group_->rank() != 0)) return;
  Safetensors file;
  for (const auto& p : net_->named_parameters()) file.tensors["model." + p.key()] = p.value().detach().to(torch::kCPU);
  std::ostringstream adam;
  torch::save(*optimizer_, adam);
  file.tensors["optimizer"] = bytesToTensor(adam.str());
  file.tensors["rng"] = at::detail::getDefaultCPUGenerator().get_state();
  nlohmann::json meta = info_;
  meta["iteration"] = iteration_;
  meta["seconds"] = elapsedSeconds();
  meta["architecture"] = architectureJson(options_.architecture);
  file.metadata["stylize-checkpoint"] = meta.dump();
  writeSafetensors(path, file);
}

TransformerConfig Trainer::checkpointArchitecture(const std::filesystem::path& checkpoint) {
  const std::string where = checkpoint.string();
  const Safetensors file = readSafetensors(checkpoint);
  const auto meta = file.metadata.find("stylize-checkpoint");
  if (meta == file.metadata.end()) throw Error(where + ": not a Stylize training checkpoint");
  const nlohmann::json info = nlohmann::json::parse(meta->second, nullptr, false);
  if (info.is_discarded() || !info.contains("architecture")) throw Error(where + ": checkpoint metadata is damaged");
  return architectureFromJson(info["architecture"], where);
}

void Trainer::resume(const std::filesystem::path& checkpoint) {
  const std::string where = checkpoint.string();
  Safetensors file = readSafetensors(checkpoint);
  const auto meta = file.metadata.find("stylize-checkpoint");
  if (meta == file.metadata.end()) throw Error(where + ": not a Stylize training checkpoint");
  const nlohmann::json info = nlohmann::json::parse(meta->second, nullptr, false);
  if (info.is_discarded() || !info.contains("iteration")) throw Error(where + ": checkpoint metadata is damaged");
  const nlohmann::json saved = info.value("architecture", nlohmann::json());
  if (architectureFromJson(saved, where) != options_.architecture)
    throw Error(where + ": checkpoint architecture " + saved.dump() + " differs from the requested " +
                architectureJson(options_.architecture).dump());
  torch::NoGradGuard noGrad;
  for (auto& p : net_->named_parameters()) {
    auto it = file.tensors.find("model." + p.key());
    if (it == file.tensors.end() || it->second.sizes() != p.value().sizes())
      throw Error(where + ": checkpoint lacks or mismatches \"" + p.key() + "\"");
    p.value().copy_(it->second);
  }
  if (!file.tensors.count("optimizer") || !file.tensors.count("rng"))
    throw Error(where + ": checkpoint lacks optimizer or RNG state");
  std::istringstream adam(tensorToBytes(file.tensors["optimizer"]));
  try {
    torch::load(*optimizer_, adam);
    at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle: shares the global state
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(file.tensors["rng"]);
  } catch (const c10::Error&) {
    throw Error(where + ": optimizer or RNG state is damaged");
  }
  iteration_ = info["iteration"].get<int64_t>();
  seconds_ = info.value("seconds", 0.0);
}

}  // namespace stylize
