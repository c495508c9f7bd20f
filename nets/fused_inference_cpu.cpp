#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "nets/fused_inference.h"

namespace stylize::fused {
namespace {

bool initialEnabled() {
  const char* value = std::getenv("STYLIZE_FUSED");
  return !(value && std::string(value) == "0");
}
std::atomic<bool> enabledFlag{initialEnabled()};  // read by every forward, on any thread

// How each position of a padded axis maps into the unpadded one.
int64_t sourceIndex(int64_t i, int64_t size, Pad mode) {
  if (i >= 0 && i < size) return i;
  if (mode == Pad::kReplicate) return i < 0 ? 0 : size - 1;
  return i < 0 ? -i : 2 * (size - 1) - i;
}

// Activations here are channels-last (NHWC): oneDNN's own layout, in which every convolution of these
// networks ran faster than in NCHW (1.1× for the 3×3 residual convs, 2.1× for the 9×9 3→16, 3.7× for the
// 2×2 phase conv 32→64, LibTorch 1.13 on one AVX2 core), and one in which the per-pixel channel vectors
// these passes work on are contiguous.
constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;

void checkChannelsLast(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(t.dim() == 4 && t.scalar_type() == torch::kFloat && t.device().is_cpu() && t.is_contiguous(kChannelsLast),
              what, ": expected a channels-last float32 [N, C, H, W] CPU tensor, got ", t.sizes());
}

// Fills the `pad` border pixels of a padded NHWC row whose interior [pad, pad + width) is written.
void padRow(float* row, int64_t width, int64_t channels, int64_t pad, Pad mode) {
  const size_t bytes = static_cast<size_t>(channels) * sizeof(float);
  for (int64_t k = 1; k <= pad; ++k) {
    std::memcpy(row + (pad - k) * channels, row + (mode == Pad::kReflect ? pad + k : pad) * channels, bytes);
    std::memcpy(row + (pad + width - 1 + k) * channels,
                row + (mode == Pad::kReflect ? pad + width - 1 - k : pad + width - 1) * channels, bytes);
  }
}

// Fills the `pad` border rows of a padded image whose interior rows are complete.
void padRows(float* image, int64_t height, int64_t rowLength, int64_t pad, Pad mode) {
  const size_t bytes = static_cast<size_t>(rowLength) * sizeof(float);
  for (int64_t k = 1; k <= pad; ++k) {
    std::memcpy(image + (pad - k) * rowLength, image + (mode == Pad::kReflect ? pad + k : pad) * rowLength, bytes);
    std::memcpy(image + (pad + height - 1 + k) * rowLength,
                image + (mode == Pad::kReflect ? pad + height - 1 - k : pad + height - 1) * rowLength, bytes);
  }
}

// Reads an activation (plain or phased, see Activation) pixel by pixel: the C-vector at logical (y, x).
struct PixelReader {
  const float* data;
  int64_t channels, rowStride, pixelStride, imageStride;
  bool phased;
  PixelReader(const Activation& a)
      : data(a.data.data_ptr<float>()),
        channels(a.channels()),
        rowStride(a.data.stride(2)),
        pixelStride(a.data.stride(3)),
        imageStride(a.data.stride(0)),
        phased(a.phased) {}
  // Calls f(x, vector) for every pixel of logical row y of image n, without a branch per pixel: a plain row
  // is one run of pixels, a phased one two (even x, then odd x). One call site, so that f is inlined.
  template <typename F>
  void forEachPixel(int64_t n, int64_t y, int64_t width, F&& f) const {
    struct Run {
      const float* first;
      int64_t x0, dx, count;
    } runs[2];
    int64_t count = 1;
    if (!phased) {
      runs[0] = {data + n * imageStride + y * rowStride, 0, 1, width};
    } else {
      const int64_t a = y & 1;
      const float* even = data + n * imageStride + (y / 2 + a) * rowStride + 2 * a * channels;
      runs[0] = {even, 0, 2, width / 2};
      runs[1] = {even + pixelStride + channels, 1, 2, width / 2};
      count = 2;
    }
    for (int64_t r = 0; r < count; ++r) {
      const Run run = runs[r];
      for (int64_t j = 0; j < run.count; ++j) f(run.x0 + j * run.dx, run.first + j * pixelStride);
    }
  }
  // The C-vector at logical (y, x) of image n: phase (y % 2, x % 2) sits at (y / 2 + y % 2, x / 2 + x % 2).
  const float* at(int64_t n, int64_t y, int64_t x) const {
    if (!phased) return data + n * imageStride + y * rowStride + x * pixelStride;
    const int64_t a = y & 1, b = x & 1;
    return data + n * imageStride + (y / 2 + a) * rowStride + (x / 2 + b) * pixelStride + (2 * a + b) * channels;
  }
};

}  // namespace

bool enabled() { return enabledFlag; }
void setEnabled(bool on) { enabledFlag = on; }

std::vector<int64_t> padIndex(int64_t size, int64_t before, int64_t after, Pad mode) {
  TORCH_CHECK(mode == Pad::kReplicate || (before < size && after < size), "reflection pad ", before, "/", after,
              " needs a side longer than it, got ", size);
  std::vector<int64_t> index(static_cast<size_t>(size + before + after));
  for (size_t i = 0; i < index.size(); ++i) index[i] = sourceIndex(static_cast<int64_t>(i) - before, size, mode);
  return index;
}

std::vector<int64_t> compose(const std::vector<int64_t>& outer, const std::vector<int64_t>& inner) {
  std::vector<int64_t> index(inner.size());
  for (size_t i = 0; i < inner.size(); ++i) index[i] = outer.at(static_cast<size_t>(inner[i]));
  return index;
}

torch::Tensor gather(const torch::Tensor& input, const std::vector<int64_t>& rows, const std::vector<int64_t>& cols) {
  RECORD_USER_SCOPE("stylize::fused::gather");  // named in LibTorch's profiler
  const torch::Tensor x = input.contiguous();
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == torch::kFloat && x.device().is_cpu(),
              "fused::gather: expected a float32 [N, C, H, W] CPU tensor, got ", x.sizes());
  const int64_t batch = x.size(0), channels = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t outH = static_cast<int64_t>(rows.size()), outW = static_cast<int64_t>(cols.size());
  for (const int64_t r : rows) TORCH_CHECK(r >= 0 && r < h, "fused::gather: row index out of range");
  for (const int64_t c : cols) TORCH_CHECK(c >= 0 && c < w, "fused::gather: column index out of range");
  torch::Tensor out = torch::empty({batch, channels, outH, outW}, x.options().memory_format(kChannelsLast));
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, batch * outH, 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / outH, y = i % outH;
      float* to = dst + i * outW * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const float* from = src + ((n * channels + c) * h + rows[static_cast<size_t>(y)]) * w;
        for (int64_t j = 0; j < outW; ++j) to[j * channels + c] = from[cols[static_cast<size_t>(j)]];
      }
    }
  });
  return out;
}

namespace {

// The two passes of normalizePadded for K channels (0: any number, read at run time). A compile-time K lets
// the compiler unroll and vectorise the per-pixel channel loops, which run once per element.
template <int64_t K>
void normalizeImages(const PixelReader& in, int64_t batch, int64_t channels, int64_t h, int64_t w, double eps,
                     const float* gamma, const float* beta, bool relu, const torch::Tensor& residual, int64_t pad,
                     Pad mode, float* dst) {
  const int64_t C = K ? K : channels;
  const int64_t outW = w + 2 * pad, rowLength = outW * C, outH = h + 2 * pad;
  // Statistics: each row's moments about the image's first pixel (which keeps the variance free of
  // cancellation), summed in float along the row and in double over rows, in row order (deterministic).
  std::vector<double> moments(static_cast<size_t>(batch * h * 2 * C));
  at::parallel_for(0, batch * h, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> accumulators(static_cast<size_t>(2 * C));
    float* sum = accumulators.data();
    float* squares = sum + C;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / h, y = i % h;
      const float* first = in.at(n, 0, 0);
      std::fill(accumulators.begin(), accumulators.end(), 0.f);
      in.forEachPixel(n, y, w, [&](int64_t, const float* v) {
        for (int64_t c = 0; c < C; ++c) {
          const float d = v[c] - first[c];
          sum[c] += d;
          squares[c] += d * d;
        }
      });
      double* m = moments.data() + i * 2 * C;
      for (int64_t c = 0; c < 2 * C; ++c) m[c] = accumulators[static_cast<size_t>(c)];
    }
  });
  // Per image and channel: (v − mean)·scale + bias, so that a flat plane gives the bias exactly, as ATen's
  // instance norm does.
  std::vector<float> mean(static_cast<size_t>(batch * C)), scale(mean.size());
  const double count = static_cast<double>(h * w);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < C; ++c) {
      double sum = 0, squares = 0;
      for (int64_t y = 0; y < h; ++y) {
        sum += moments[static_cast<size_t>((n * h + y) * 2 * C + c)];
        squares += moments[static_cast<size_t>((n * h + y) * 2 * C + C + c)];
      }
      const double shifted = sum / count, variance = std::max(0.0, squares / count - shifted * shifted);
      mean[static_cast<size_t>(n * C + c)] = static_cast<float>(in.at(n, 0, 0)[c] + shifted);
      scale[static_cast<size_t>(n * C + c)] = static_cast<float>(gamma[c] / std::sqrt(variance + eps));
    }

  const float* res = residual.defined() ? residual.data_ptr<float>() : nullptr;
  at::parallel_for(0, batch * h, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / h, y = i % h;
      const float* m = mean.data() + n * C;
      const float* k = scale.data() + n * C;
      float* row = dst + (n * outH + y + pad) * rowLength;
      float* interiorRow = row + pad * C;
      // Three loops, so that each is branch-free; the residual is added in the same pass (a second pass
      // over the row ran 3× slower in the network than alone: the two buffers alias in the L1 cache).
      if (res) {
        const float* r = res + n * residual.stride(0) + y * residual.stride(2);
        in.forEachPixel(n, y, w, [&](int64_t x, const float* v) {
          float* o = interiorRow + x * C;
          const float* add = r + x * C;
          for (int64_t c = 0; c < C; ++c) o[c] = (v[c] - m[c]) * k[c] + beta[c] + add[c];
        });
      } else if (relu) {
        in.forEachPixel(n, y, w, [&](int64_t x, const float* v) {
          float* o = interiorRow + x * C;
          for (int64_t c = 0; c < C; ++c) o[c] = std::max((v[c] - m[c]) * k[c] + beta[c], 0.f);
        });
      } else {
        in.forEachPixel(n, y, w, [&](int64_t x, const float* v) {
          float* o = interiorRow + x * C;
          for (int64_t c = 0; c < C; ++c) o[c] = (v[c] - m[c]) * k[c] + beta[c];
        });
      }
      padRow(row, w, C, pad, mode);
    }
  });
  for (int64_t n = 0; n < batch; ++n) padRows(dst + n * outH * rowLength, h, rowLength, pad, mode);
}

}  // namespace

torch::Tensor normalizePadded(const Activation& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                              bool relu, const torch::Tensor& residual, int64_t pad, Pad mode) {
  RECORD_USER_SCOPE("stylize::fused::normalizePadded");  // named in LibTorch's profiler
  checkChannelsLast(x.data, "fused::normalizePadded");
  const int64_t batch = x.data.size(0), channels = x.channels(), h = x.height(), w = x.width();
  TORCH_CHECK(!x.phased || x.data.size(1) % 4 == 0, "fused::normalizePadded: phased input needs 4C channels");
  TORCH_CHECK(x.rowTaps == 1, "fused::normalizePadded: a row-split conv is read by finishRgb() only");
  TORCH_CHECK(mode == Pad::kReplicate || (pad < h && pad < w), "fused::normalizePadded: reflection pad ", pad,
              " needs sides longer than it, got ", h, "x", w);
  TORCH_CHECK(weight.numel() == channels && bias.numel() == channels, "fused::normalizePadded: ", channels,
              " channels but ", weight.numel(), " weights");
  if (residual.defined())
    TORCH_CHECK(residual.scalar_type() == torch::kFloat && residual.size(0) == batch && residual.size(1) == channels &&
                    residual.size(2) == h && residual.size(3) == w && residual.stride(1) == 1 &&
                    residual.stride(3) == channels,
                "fused::normalizePadded: residual must be a channels-last [N, C, H, W] view, got ", residual.sizes());
  const torch::Tensor gamma = weight.to(torch::kFloat).contiguous(), beta = bias.to(torch::kFloat).contiguous();
  torch::Tensor out =
      torch::empty({batch, channels, h + 2 * pad, w + 2 * pad}, x.data.options().memory_format(kChannelsLast));
  const PixelReader in(x);
  auto run = [&](auto k) {
    normalizeImages<decltype(k)::value>(in, batch, channels, h, w, eps, gamma.data_ptr<float>(), beta.data_ptr<float>(),
                                        relu, residual, pad, mode, out.data_ptr<float>());
  };
  switch (channels) {  // the widths of the bundled and default networks: 8 · {1, 2, 4}, 16 · {1, 2, 4}, 32 · ...
    case 8:
      run(std::integral_constant<int64_t, 8>());
      break;
    case 16:
      run(std::integral_constant<int64_t, 16>());
      break;
    case 32:
      run(std::integral_constant<int64_t, 32>());
      break;
    case 64:
      run(std::integral_constant<int64_t, 64>());
      break;
    case 128:
      run(std::integral_constant<int64_t, 128>());
      break;
    default:
      run(std::integral_constant<int64_t, 0>());
  }
  return out;
}

namespace {

// Johnson's output activation (tanh(v) + 1) / 2, computed as the equal 1 / (1 + e^(−2v)) with e^x from
// Cephes' expf (a degree-6 polynomial on [−ln2/2, ln2/2], the power of two put in through the exponent
// bits): branch-free, so the compiler vectorises a row of it, where ATen's tanh took 60 % of this whole
// pass. Within 1e-6 of it.
inline float outputActivation(float v) {
  float x = -2.f * v;
  x = x > -87.f ? x : -87.f;  // also maps NaN somewhere finite
  x = x < 87.f ? x : 87.f;
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest (2^23 + 2^22)
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;           // x − n·ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) * (1 << 23);  // 2^n, n in [−126, 126]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return 1.f / (1.f + e * scale);
}

}  // namespace

torch::Tensor finishRgb(const Activation& x, int64_t top, int64_t left, int64_t h, int64_t w) {
  RECORD_USER_SCOPE("stylize::fused::finishRgb");  // named in LibTorch's profiler
  checkChannelsLast(x.data, "fused::finishRgb");
  TORCH_CHECK(top >= 0 && left >= 0 && top + h <= x.height() && left + w <= x.width(),
              "fused::finishRgb: window outside");
  const int64_t batch = x.data.size(0), channels = x.channels();
  torch::Tensor out =
      torch::empty({batch, channels, h, w}, x.data.options().memory_format(torch::MemoryFormat::Contiguous));
  const PixelReader in(x);
  const int64_t taps = x.rowTaps, rowStride = x.data.stride(2), pixelStride = x.data.stride(3);
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, batch * h, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(w * channels));  // the output row, pixel-major
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / h, y = i % h;
      if (taps > 1) {  // a row-split conv: channel o of (y, x) is the sum over t of channel o·taps + t at (y + t, x)
        const float* first = x.data.data_ptr<float>() + n * x.data.stride(0) + (top + y) * rowStride;
        for (int64_t xi = 0; xi < w; ++xi)
          for (int64_t c = 0; c < channels; ++c) {
            float sum = 0;
            for (int64_t t = 0; t < taps; ++t) sum += first[t * rowStride + (left + xi) * pixelStride + c * taps + t];
            row[static_cast<size_t>(xi * channels + c)] = sum;
          }
      } else {
        for (int64_t xi = 0; xi < w; ++xi) {
          const float* v = in.at(n, top + y, left + xi);
          for (int64_t c = 0; c < channels; ++c) row[static_cast<size_t>(xi * channels + c)] = v[c];
        }
      }
      for (float& v : row) v = outputActivation(v);
      for (int64_t c = 0; c < channels; ++c) {
        float* plane = dst + ((n * channels + c) * h + y) * w;
        for (int64_t xi = 0; xi < w; ++xi) plane[xi] = row[static_cast<size_t>(xi * channels + c)];
      }
    }
  });
  return out;
}

torch::Tensor interior(const torch::Tensor& padded, int64_t pad) {
  using torch::indexing::Slice;
  if (pad == 0) return padded;
  return padded.index({Slice(), Slice(), Slice(pad, padded.size(2) - pad), Slice(pad, padded.size(3) - pad)});
}

PhaseConv phaseConv(const torch::Tensor& w, const torch::Tensor& bias) {
  TORCH_CHECK(w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3, "fused::phaseConv needs a 3×3 kernel");
  // Output row 2i of nearest-upsample + 3×3 conv sees input rows (i−1, i, i) through taps (w0, w1, w2): a
  // 2-tap kernel (w0, w1+w2) over rows (i−1, i); row 2i+1 sees (i, i, i+1): (w0+w1, w2) over (i, i+1). The
  // same along columns. With the input replicate-padded by 1, phase (a, b) at (i, j) is the 2×2 conv at
  // (i + a, j + b).
  const torch::Tensor combine =
      torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 1.f}, w.options()).view({2, 2, 3});
  std::vector<torch::Tensor> kernels;
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 2; ++b) kernels.push_back(torch::einsum("rk,ocks,ts->ocrt", {combine[a], w, combine[b]}));
  return {torch::cat(kernels, 0).contiguous(kChannelsLast), bias.defined() ? bias.repeat({4}) : torch::Tensor()};
}

Activation runPhaseConv(const torch::Tensor& paddedInput, const PhaseConv& conv) {
  return {torch::conv2d(paddedInput, conv.weight, conv.bias).contiguous(kChannelsLast), true};
}

Activation rowSplitConv(const torch::nn::Conv2d& conv, const torch::Tensor& padded) {
  const torch::Tensor& w = conv->weight;  // [out, in, k, k] → [out·k, in, 1, k]: row t of output o's kernel
  const int64_t out = w.size(0), in = w.size(1), k = w.size(2);
  TORCH_CHECK(w.size(3) == k && conv->options.stride()->at(0) == 1, "fused::rowSplitConv: square stride-1 kernels");
  const torch::Tensor rows = w.permute({0, 2, 1, 3}).reshape({out * k, in, 1, k}).contiguous(kChannelsLast);
  // The bias goes with tap 0 only, so that the sum of the taps carries it once.
  torch::Tensor bias;
  if (conv->bias.defined())
    bias = torch::zeros({out, k}, w.options()).index_put_({torch::indexing::Slice(), 0}, conv->bias).flatten();
  return {torch::conv2d(padded, rows, bias).contiguous(kChannelsLast), false, k};
}

torch::Tensor convolve(const torch::nn::Conv2d& conv, const torch::Tensor& padded) {
  const auto stride = conv->options.stride();
  return torch::conv2d(padded, conv->weight.contiguous(kChannelsLast), conv->bias, {stride->at(0), stride->at(1)})
      .contiguous(kChannelsLast);
}

}  // namespace stylize::fused
