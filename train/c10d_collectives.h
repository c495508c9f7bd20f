// A c10d process group (Gloo's, NCCL's) as our Collectives. Internal to train/: it needs the c10d headers,
// which only the two files that build process groups include.
#pragma once

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "train/training_group.h"

namespace stylize {

// LibTorch 1.13 derives process groups from ProcessGroup, 2.x from Backend: both have these two calls.
template <class Group>
class C10dCollectives : public Collectives {
 public:
  explicit C10dCollectives(c10::intrusive_ptr<Group> group) : group_(std::move(group)) {}
  void allreduceSum(torch::Tensor& t) override {
    std::vector<at::Tensor> tensors{t};
    group_->allreduce(tensors)->wait();
  }
  void broadcastFromRank0(torch::Tensor& t) override {
    std::vector<at::Tensor> tensors{t};
    group_->broadcast(tensors)->wait();
  }

 private:
  c10::intrusive_ptr<Group> group_;
};

// NCCL's process group (training_group_cuda.cpp); throws Error where the build has no NCCL.
std::unique_ptr<Collectives> makeNcclCollectives(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                 std::chrono::milliseconds timeout);

}  // namespace stylize
