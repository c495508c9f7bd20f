// Data-parallel training on PyTorch's own distributed engine, c10d: the ranks meet through a TCPStore at
// MASTER_ADDR:MASTER_PORT (torchrun's variables, so torchrun, Slurm and Kubernetes launchers work as they
// are), Gloo carries the collectives on the CPU and NCCL on CUDA. Each step every rank trains its shard of
// the global batch and the gradients are averaged in one bucketed all-reduce, which also carries the loss
// terms for the log and each rank's stop request, so that all ranks stop after the same step.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace stylize {

// Where and who: read from the environment as torchrun sets it.
struct Rendezvous {
  std::string address;  // MASTER_ADDR
  int port = 0;         // MASTER_PORT
  int rank = 0, worldSize = 1, localRank = 0;
  // Throws Error when the variables are partly set or malformed; nullopt when none is set (one process).
  static std::optional<Rendezvous> fromEnvironment();
};

// The collectives a backend offers us; Gloo's and NCCL's process groups behind one face.
class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual void allreduceSum(torch::Tensor& t) = 0;
  virtual void broadcastFromRank0(torch::Tensor& t) = 0;
};

// Whether this build can train across processes, and with which backends ("gloo", "nccl").
std::vector<std::string> availableBackends();

class TrainingGroup {
 public:
  // Joins the group: connects to (rank 0: starts) the store, waits for every rank up to `timeout`, then
  // builds the backend's process group. backend: auto (NCCL on CUDA, else Gloo), gloo or nccl. A collective
  // that waits longer than `timeout` for a rank fails with an error naming the ranks that did not arrive.
  TrainingGroup(const Rendezvous& where, const std::string& backend, std::chrono::milliseconds timeout,
                const torch::Device& device);
  ~TrainingGroup();

  int rank() const { return where_.rank; }
  int size() const { return where_.worldSize; }
  const std::string& backend() const { return backend_; }

  // Rank 0's values to every rank (parameters at the start, so all ranks begin equal).
  void broadcast(const std::vector<torch::Tensor>& tensors);

  // After backward: every gradient replaced by its mean over the ranks, in one all-reduce that also sums
  // `extras` (loss terms to average, a stop request...). `step` names the step in the error if a rank is
  // missing.
  void averageGradients(const std::vector<torch::Tensor>& parameters, std::vector<double>& extras, int64_t step);

 private:
  std::string missingRanks(int64_t step);

  Rendezvous where_;
  std::string backend_;
  std::chrono::milliseconds timeout_;
  struct Store;  // c10d's TCPStore, kept out of this header
  std::unique_ptr<Store> store_;
  std::unique_ptr<Collectives> collectives_;
  // Counts up once a second in the store while this process runs: a rank whose count stands still is dead
  // or stopped, whatever step it had announced.
  struct Heartbeat {
    std::mutex mutex;
    std::condition_variable wake;
    bool stopping = false, finished = false;
  };
  std::shared_ptr<Heartbeat> heartbeat_ = std::make_shared<Heartbeat>();
  std::thread heartbeatThread_;
};

}  // namespace stylize
