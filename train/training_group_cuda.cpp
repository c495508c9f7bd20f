// NCCL, the CUDA backend of the training group: the only file that needs NCCL's headers. Built where
// LibTorch has CUDA and ProcessGroupNCCL.hpp and nccl.h are found (cmake: STYLIZE_HAVE_NCCL).
#include "data/error.h"
#include "train/c10d_collectives.h"

#ifdef STYLIZE_HAVE_NCCL
#define USE_C10D_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace stylize {

std::unique_ptr<Collectives> makeNcclCollectives(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                 std::chrono::milliseconds timeout) {
#ifdef STYLIZE_HAVE_NCCL
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return std::make_unique<C10dCollectives<c10d::ProcessGroupNCCL>>(
      c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options));
#else
  (void)store, (void)rank, (void)size, (void)timeout;
  throw Error("--backend nccl: this build has no NCCL (LibTorch with CUDA and nccl.h are needed)");
#endif
}

}  // namespace stylize
