// Test entry point: LibTorch on all cores (Debian's build starts with one thread).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

int main(int argc, char** argv) {
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
