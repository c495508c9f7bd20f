// stylize-gpu-check: what only a GPU can check, in one binary that needs LibTorch alone (the lent device
// machine has no OpenCV, FFmpeg, SDL2 or GoogleTest). Every CUDA computation is compared with the CPU's
// (transform networks, the VGG perceptual loss and its gradients, the YUV conversions), then the networks,
// a training step and a Gatys evaluation are timed. tools/device-check runs it; `--device cpu --quick`
// rehearses it on the CPU (the CPU against itself), so that a device session spends its minutes on the GPU.
//   stylize-gpu-check [--device cuda|cpu] [--quick]
#include <ATen/Context.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/safetensors.h"
#include "infer/yuv.h"
#include "nets/transformer_net.h"
#include "nets/vgg.h"
#include "train/perceptual_loss.h"
#include "train/temporal_loss.h"

namespace {

using namespace stylize;
using Clock = std::chrono::steady_clock;

int failures = 0;
std::vector<std::string> notes;  // printed under the checks' table

// Max |a − b| relative to max |a|: one number per comparison, independent of the tensor's scale.
double relativeError(const torch::Tensor& reference, const torch::Tensor& other) {
  const torch::Tensor a = reference.detach().to(torch::kCPU, torch::kFloat64);
  const torch::Tensor b = other.detach().to(torch::kCPU, torch::kFloat64);
  return (a - b).abs().max().item<double>() / std::max(1e-30, a.abs().max().item<double>());
}

void report(const std::string& what, double error, double tolerance) {
  const bool pass = error < tolerance;
  failures += !pass;
  std::printf("| %s | %.2e | %.0e | %s |\n", what.c_str(), error, tolerance, pass ? "pass" : "**FAIL**");
}

// A VGG19 prefix (conv1_1..conv3_4) with random He-initialised weights: the comparisons need the
// network's arithmetic, not ImageNet's weights.
Vgg19 randomVgg(const std::filesystem::path& file) {
  static constexpr int kIndex[] = {0, 2, 5, 7, 10, 12, 14, 16};
  static constexpr int64_t kChannels[] = {64, 64, 128, 128, 256, 256, 256, 256};
  Safetensors weights;
  int64_t in = 3;
  for (int i = 0; i < 8; ++i) {
    const std::string prefix = "features." + std::to_string(kIndex[i]);
    weights.tensors[prefix + ".weight"] = torch::randn({kChannels[i], in, 3, 3}) * std::sqrt(2.0 / (9 * in));
    weights.tensors[prefix + ".bias"] = torch::randn({kChannels[i]}) * 0.01;
    in = kChannels[i];
  }
  writeSafetensors(file, weights);
  return Vgg19::load(file);
}

LossConfig checkLoss() {
  LossConfig config;
  config.contentLayers = {{"relu3_1", 1}};
  config.styleLayers = {{"relu1_1", 1}, {"relu2_1", 1}, {"relu3_1", 1}};
  config.styleWeight = 10;
  config.tvWeight = 1;
  config.pyramidLevels = 2;
  return config;
}

// Median seconds of `run` (after warm-up), with as many repetitions as fit in about a second.
template <typename F>
double medianSeconds(F run, const torch::Device& device) {
  const auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  for (int i = 0; i < 3; ++i) run();
  sync();
  std::vector<double> times;
  const auto start = Clock::now();
  while (times.size() < 5 || (times.size() < 200 && Clock::now() - start < std::chrono::seconds(1))) {
    const auto t0 = Clock::now();
    run();
    sync();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int run(int argc, char** argv) {
  std::string deviceName = torch::cuda::is_available() ? "cuda" : "cpu";
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--device" && i + 1 < argc)
      deviceName = argv[++i];
    else if (arg == "--quick")
      quick = true;
    else {
      std::fprintf(stderr, "usage: stylize-gpu-check [--device cuda|cpu] [--quick]\n");
      return 2;
    }
  }
  const torch::Device device(deviceName);
  const torch::Device cpu(torch::kCPU);
  // fp32 means fp32: TF32 tensor cores would make "fp32" convolutions 1e-3 accurate.
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setBenchmarkCuDNN(true);  // fixed frame sizes: let cuDNN pick the fastest kernels
  std::printf("# stylize-gpu-check on %s (LibTorch %s%s)\n\n", device.str().c_str(), TORCH_VERSION,
              quick ? ", quick rehearsal sizes" : "");

  // 1. The same numbers on the device as on the CPU.
  std::printf("| check | relative error | tolerance | |\n|---|---|---|---|\n");
  torch::manual_seed(0);
  const torch::Tensor image = torch::rand({2, 3, 67, 93});
  std::vector<TransformerConfig> nets{TransformerConfig::defaults(Architecture::kJohnson),
                                      TransformerConfig::defaults(Architecture::kCompact)};
  // Also a 16/5 network behind the input denoiser (its exp of large negative numbers in fp16/bf16).
  std::vector<TransformerConfig> checked = nets;
  checked.push_back({16, 5, Architecture::kJohnson, 0.03});
  for (const TransformerConfig& config : checked) {
    const std::string name = config.type == Architecture::kCompact ? "compact 8/3"
                             : config.denoise > 0                  ? "johnson 16/5 + denoiser"
                                                                   : "johnson 32/5";
    torch::manual_seed(1);
    TransformerNet reference(config), other(config);
    {
      torch::NoGradGuard noGrad;
      const auto from = reference->named_parameters();
      for (auto& p : other->named_parameters()) p.value().copy_(from[p.key()]);
    }
    reference->eval();
    other->eval();
    torch::NoGradGuard noGrad;
    const torch::Tensor expected = reference->forward(image);
    other->to(device);
    report(name + " forward fp32", relativeError(expected, other->forward(image.to(device))), 1e-4);
    for (const auto type : {torch::kFloat16, torch::kBFloat16}) {
      if (!device.is_cuda()) continue;  // LibTorch 1.13's CPU kernels lack half types (reflection padding)
      other->to(device, type);
      report(name + (type == torch::kFloat16 ? " forward fp16" : " forward bf16"),
             relativeError(expected, other->forward(image.to(device, type))), type == torch::kFloat16 ? 1e-2 : 5e-2);
      other->to(device, torch::kFloat32);
    }
  }

  const std::filesystem::path vggFile = std::filesystem::temp_directory_path() / "stylize-gpu-check-vgg.safetensors";
  torch::manual_seed(2);
  Vgg19 vggCpu = randomVgg(vggFile), vggDevice = Vgg19::load(vggFile);
  vggDevice.to(device);
  PerceptualLoss lossCpu(vggCpu, checkLoss()), lossDevice(vggDevice, checkLoss());
  const torch::Tensor style = torch::rand({3, 96, 128}), content = torch::rand({2, 3, 64, 80});
  lossCpu.setStyle({style}, {1.0});
  lossDevice.setStyle({style.to(device)}, {1.0});
  {
    // A training step's numbers: the loss of a network's output and the gradients it sends back.
    torch::manual_seed(3);
    TransformerNet a(nets[0]), b(nets[0]);
    {
      torch::NoGradGuard noGrad;
      const auto from = a->named_parameters();
      for (auto& p : b->named_parameters()) p.value().copy_(from[p.key()]);
    }
    b->to(device);
    const LossTerms ta = lossCpu(a->forward(content), lossCpu.contentTargets(content));
    const LossTerms tb = lossDevice(b->forward(content.to(device)), lossDevice.contentTargets(content.to(device)));
    report("perceptual loss (content, style, tv)",
           relativeError(torch::stack({ta.content, ta.style, ta.tv}), torch::stack({tb.content, tb.style, tb.tv})),
           1e-4);
    ta.total.backward();
    tb.total.backward();
    // A convolution's bias in front of an instance norm has a gradient of exactly zero in exact arithmetic,
    // so its float noise cannot be measured against itself: every parameter's error is measured against
    // the largest gradient of the whole network; parameters off by more than 1e-3 of their own are listed.
    const auto gb = b->named_parameters();
    double scale = 0, worst = 0;
    std::string worstName;
    for (const auto& p : a->named_parameters()) scale = std::max(scale, p.value().grad().abs().max().item<double>());
    for (const auto& p : a->named_parameters()) {
      const torch::Tensor& grad = p.value().grad();
      const double largest = grad.abs().max().item<double>(), own = relativeError(grad, gb[p.key()].grad());
      const double error = own * std::max(1e-30, largest) / std::max(1e-30, scale);
      if (error >= worst) worst = error, worstName = p.key();
      if (own > 1e-3)
        notes.push_back(fmt::format("{}: {:.2e} of its own largest gradient, which is {:.1e} of the network's", p.key(),
                                    own, largest / scale));
    }
    report("training gradients (worst: " + worstName + ", of the largest gradient)", worst, 1e-3);
  }
  {
    // The trainer's sub-pixel temporal term (--temporal-motion subpixel): FFTs of reflect-padded images,
    // float32 whatever the input type, and the gradient that goes back through the moved output.
    torch::manual_seed(4);
    const MotionRange range{6, 0, 0, MotionKind::kSubpixel};
    const torch::Tensor frames = torch::rand({2, 3, 72, 88}), motion = randomMotion(2, 72, 88, range);
    const torch::Tensor moved = fourierShiftImages(frames, motion);
    report("sub-pixel move (Fourier) fp32",
           relativeError(moved, fourierShiftImages(frames.to(device), motion.to(device))), 1e-5);
    if (device.is_cuda())
      report("sub-pixel move (Fourier) of bf16 images",
             relativeError(moved, fourierShiftImages(frames.to(device, torch::kBFloat16), motion.to(device))), 2e-2);
    const torch::Tensor mask = warpValidMask(motion, 72, 88, cpu, 2);
    torch::Tensor a = frames.clone().requires_grad_(), b = frames.to(device).clone().requires_grad_();
    temporalLoss(frames.flip(3), fourierShiftImages(a, motion), mask).backward();
    temporalLoss(frames.flip(3).to(device), fourierShiftImages(b, motion.to(device)), mask.to(device)).backward();
    report("temporal loss gradient (sub-pixel)", relativeError(a.grad(), b.grad()), 1e-4);
  }
  {
    const torch::Tensor rgb = torch::rand({3, 45, 77});
    for (int bits : {8, 10}) {
      const YuvFormat format{YuvFormat::Matrix::kBt709, false, bits};
      const YuvPlanes a = rgbToYuv(rgb, format), b = rgbToYuv(rgb.to(device), format);
      const double codes = (a.y.to(torch::kInt32) - b.y.to(cpu, torch::kInt32)).abs().max().item<double>() +
                           (a.u.to(torch::kInt32) - b.u.to(cpu, torch::kInt32)).abs().max().item<double>();
      report("RGB → YUV " + std::to_string(bits) + "-bit (codes apart)", codes, 1.5);
      report("YUV → RGB " + std::to_string(bits) + "-bit",
             relativeError(yuvToRgb(a, format), yuvToRgb({a.y.to(device), a.u.to(device), a.v.to(device), {}}, format)),
             1e-5);
    }
  }

  for (const std::string& note : notes) std::printf("\n- %s", note.c_str());
  std::printf("\n");
  // 2. Speed.
  std::printf("\n| network | size | precision | ms (median) | frames/s |\n|---|---|---|---|---|\n");
  const std::vector<std::pair<int64_t, int64_t>> sizes =
      quick ? std::vector<std::pair<int64_t, int64_t>>{{256, 256}, {180, 320}}
            : std::vector<std::pair<int64_t, int64_t>>{{256, 256}, {720, 1280}, {1080, 1920}};
  {
    // A training step (Johnson's network, batch 4 × 256², Adam) and a Gatys evaluation (loss and gradient
    // of a 512² image), in fp32.
    const int64_t batch = quick ? 1 : 4, crop = quick ? 64 : 256, gatys = quick ? 128 : 512;
    TransformerNet net(nets[0]);
    net->to(device);
    torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(1e-3));
    const torch::Tensor photos = torch::rand({batch, 3, crop, crop}, torch::TensorOptions().device(device));
    const double step = medianSeconds(
        [&] {
          adam.zero_grad();
          lossDevice(net->forward(photos), lossDevice.contentTargets(photos)).total.backward();
          adam.step();
        },
        device);
    std::printf("| training step | %lld × %lld² | fp32 | %.2f | %.1f it/s |\n", (long long)batch, (long long)crop,
                step * 1e3, 1 / step);
    const torch::Tensor target = torch::rand({1, 3, gatys, gatys}, torch::TensorOptions().device(device));
    const auto targets = lossDevice.contentTargets(target);
    torch::Tensor pixels = torch::rand({1, 3, gatys, gatys}, torch::TensorOptions().device(device)).requires_grad_();
    const double evaluation = medianSeconds(
        [&] {
          pixels.mutable_grad() = torch::Tensor();
          lossDevice(pixels, targets).total.backward();
        },
        device);
    std::printf("| Gatys evaluation | %lld² | fp32 | %.2f | %.1f /s |\n", (long long)gatys, evaluation * 1e3,
                1 / evaluation);
  }
  torch::NoGradGuard noGrad;
  for (const TransformerConfig& config : nets) {
    TransformerNet net(config);
    net->eval();
    for (const auto type : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
      if (type != torch::kFloat32 && !device.is_cuda()) continue;
      net->to(device, type);
      for (const auto& [h, w] : sizes) {
        const torch::Tensor x = torch::rand({1, 3, h, w}, torch::TensorOptions().device(device).dtype(type));
        const double s = medianSeconds([&] { net->forward(x); }, device);
        std::printf("| %s | %lldx%lld | %s | %.2f | %.1f |\n",
                    config.type == Architecture::kCompact ? "compact 8/3" : "johnson 32/5", (long long)w, (long long)h,
                    type == torch::kFloat32   ? "fp32"
                    : type == torch::kFloat16 ? "fp16"
                                              : "bf16",
                    s * 1e3, 1 / s);
      }
    }
  }

  // 3. Where Johnson's time goes at the largest size, in fp16: the network again in channels_last, and its
  // layers alone (the ones at full resolution cost the most memory traffic), to aim the next speed work.
  // (fp32 in the CPU rehearsal: LibTorch 1.13's CPU kernels lack half types.)
  {
    const auto [h, w] = sizes.back();
    const auto halfType = device.is_cuda() ? torch::kFloat16 : torch::kFloat32;
    const auto half = torch::TensorOptions().device(device).dtype(halfType);
    const auto last = torch::MemoryFormat::ChannelsLast;
    TransformerNet net(nets[0]);
    net->eval();
    net->to(device, halfType);
    for (auto& p : net->parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(last));
    const torch::Tensor x = torch::rand({1, 3, h, w}, half).contiguous(last);
    std::printf("\n| johnson 32/5 %s at %lldx%lld, piece | ms (median) |\n|---|---|\n",
                device.is_cuda() ? "fp16" : "fp32", (long long)w, (long long)h);
    std::printf("| whole network, channels_last | %.2f |\n", 1e3 * medianSeconds([&] { net->forward(x); }, device));
    const torch::Tensor full = torch::rand({1, 32, h, w}, half), quarter = torch::rand({1, 64, h / 2, w / 2}, half);
    const torch::Tensor k9 = torch::rand({32, 3, 9, 9}, half), k3 = torch::rand({32, 64, 3, 3}, half);
    const torch::Tensor rgb = torch::rand({1, 3, h + 8, w + 8}, half), up = torch::rand({1, 64, h + 2, w + 2}, half);
    const std::vector<std::pair<std::string, std::function<void()>>> pieces{
        {"9×9 conv 3→32, full size", [&] { torch::conv2d(rgb, k9); }},
        {"9×9 conv 3→32, full size, channels_last", [&] { torch::conv2d(rgb.contiguous(last), k9.contiguous(last)); }},
        {"3×3 conv 64→32 after upsampling, full size", [&] { torch::conv2d(up, k3); }},
        {"3×3 conv 64→32 after upsampling, channels_last",
         [&] { torch::conv2d(up.contiguous(last), k3.contiguous(last)); }},
        {"instance norm, 32 channels, full size", [&] { torch::nn::functional::instance_norm(full); }},
        {"reflection pad 1, 32 channels, full size",
         [&] {
           torch::reflection_pad2d(full, {1, 1, 1, 1});
         }},
        {"nearest ×2 upsampling, 64 channels to full size",
         [&] {
           torch::upsample_nearest2d(quarter, {h, w});
         }},
        {"ReLU, 32 channels, full size", [&] { torch::relu(full); }},
    };
    for (const auto& [name, piece] : pieces)
      std::printf("| %s | %.3f |\n", name.c_str(), 1e3 * medianSeconds(piece, device));
  }
  return failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // what ran so far is printed; say where it stopped
    std::fflush(stdout);
    std::fprintf(stderr, "stylize-gpu-check: stopped: %s\n", e.what());
    return 1;
  }
}
