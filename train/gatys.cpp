#include "train/gatys.h"

#include <torch/torch.h>

#include "data/error.h"

namespace F = torch::nn::functional;

namespace stylize {
namespace {

torch::Tensor resizeBatch(const torch::Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  return F::interpolate(
      x, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBilinear).align_corners(false));
}

torch::Tensor initialImage(const GatysOptions& options, const torch::Tensor& content, const torch::Tensor& style) {
  switch (options.init) {
    case GatysInit::kContent:
      return content.clone();
    case GatysInit::kStyle:
      return resizeBatch(style, content.size(2), content.size(3));
    case GatysInit::kNoise:
      return torch::rand_like(content);
  }
  return content.clone();
}

}  // namespace

torch::Tensor optimizeImage(PerceptualLoss& loss, const torch::Tensor& content, const torch::Tensor& styleForInit,
                            const GatysOptions& options, const std::function<void(const GatysProgress&)>& onIteration) {
  if (options.iterations < 1) throw Error("--iterations must be at least 1");
  if (options.scales < 1 || options.scales > 5) throw Error("--scales must be 1..5");
  torch::manual_seed(options.seed);
  const torch::Device device = loss.vgg().device();
  const torch::Tensor fullContent = content.unsqueeze(0).to(device);
  const torch::Tensor style = styleForInit.unsqueeze(0).to(device);

  torch::Tensor image;
  for (int scale = 0; scale < options.scales; ++scale) {
    const double factor = std::ldexp(1.0, scale - (options.scales - 1));  // 1/4, 1/2, 1
    const int64_t h = std::max<int64_t>(16, std::lround(fullContent.size(2) * factor));
    const int64_t w = std::max<int64_t>(16, std::lround(fullContent.size(3) * factor));
    const torch::Tensor scaledContent = resizeBatch(fullContent, h, w);
    image = scale == 0 ? initialImage(options, scaledContent, style) : resizeBatch(image, h, w);
    image = image.detach().clamp(0, 1).contiguous().set_requires_grad(true);
    const Features targets = loss.contentTargets(scaledContent);

    const bool lbfgs = options.optimizer == GatysOptimizer::kLbfgs;
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (lbfgs) {
      optimizer = std::make_unique<torch::optim::LBFGS>(
          std::vector<torch::Tensor>{image},
          torch::optim::LBFGSOptions(options.learningRate > 0 ? options.learningRate : 1.0)
              .history_size(50)
              .line_search_fn("strong_wolfe"));
    } else {
      optimizer = std::make_unique<torch::optim::Adam>(
          std::vector<torch::Tensor>{image},
          torch::optim::AdamOptions(options.learningRate > 0 ? options.learningRate : 0.02));
    }

    LossTerms last;
    auto closure = [&]() -> torch::Tensor {
      optimizer->zero_grad();
      last = loss(image, targets);
      last.total.backward();
      return last.total;
    };
    for (int done = 0; done < options.iterations;) {
      // L-BFGS runs a chunk of iterations per step(): each step() starts by re-evaluating the loss, so
      // one iteration per step would cost an extra forward/backward every iteration.
      const int chunk = lbfgs ? std::min(10, options.iterations - done) : 1;
      if (lbfgs) {
        auto& group = static_cast<torch::optim::LBFGSOptions&>(optimizer->param_groups()[0].options());
        group.max_iter(chunk).max_eval(chunk * 2);
      }
      optimizer->step(closure);
      done += chunk;
      {
        torch::NoGradGuard noGrad;
        image.clamp_(0, 1);  // pixels stay displayable; between chunks so the line search sees a smooth loss
      }
      if (onIteration) {
        GatysProgress p;
        p.iteration = done;
        p.iterations = options.iterations;
        p.scale = scale;
        p.scales = options.scales;
        p.loss = LossValues::of(last);
        p.image = &image;
        onIteration(p);
      }
    }
  }
  return image.detach().squeeze(0).to(torch::kCPU);
}

}  // namespace stylize
