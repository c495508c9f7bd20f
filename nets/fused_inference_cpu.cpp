#include <ATen/Parallel.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "nets/fused_inference.h"

namespace stylize::fused {
namespace {

bool initialEnabled() {
  const char* value = std::getenv("STYLIZE_FUSED");
  return !(value && std::string(value) == "0");
}
bool enabledFlag = initialEnabled();

// How each position of a padded axis maps into the unpadded one.
int64_t sourceIndex(int64_t i, int64_t size, Pad mode) {
  if (i >= 0 && i < size) return i;
  if (mode == Pad::kReplicate) return i < 0 ? 0 : size - 1;
  return i < 0 ? -i : 2 * (size - 1) - i;
}

void checkPlain(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(t.dim() == 4 && t.scalar_type() == torch::kFloat && t.device().is_cpu() && t.is_contiguous(), what,
              ": expected a contiguous float32 [N, C, H, W] CPU tensor, got ", t.sizes());
}

// Sums of (v − shift) and (v − shift)² over a row, in eight float lanes the compiler vectorises, returned
// in double; the shift (the plane's first value) keeps the variance free of cancellation.
void rowMoments(const float* row, int64_t n, float shift, double& sum, double& squares) {
  float s[8] = {}, q[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) {
      const float d = row[i + k] - shift;
      s[k] += d;
      q[k] += d * d;
    }
  for (; i < n; ++i) {
    const float d = row[i] - shift;
    s[0] += d;
    q[0] += d * d;
  }
  for (int k = 0; k < 8; ++k) {
    sum += s[k];
    squares += q[k];
  }
}

// Instance norm as (v − mean)·scale + bias: a flat plane gives the bias exactly, as ATen's does.
struct Affine {
  float mean, scale, bias;
};

// The plane's mean and scale, from the moments of its rows.
template <typename ForEachRow>
Affine planeAffine(ForEachRow forEachRow, float first, int64_t count, double eps, float weight, float bias) {
  double sum = 0, squares = 0;
  forEachRow([&](const float* row, int64_t n) { rowMoments(row, n, first, sum, squares); });
  const double meanShifted = sum / static_cast<double>(count);
  const double variance = std::max(0.0, squares / static_cast<double>(count) - meanShifted * meanShifted);
  const double scale = static_cast<double>(weight) / std::sqrt(variance + eps);
  return {static_cast<float>(first + meanShifted), static_cast<float>(scale), bias};
}

// Fills the `pad` border columns of a padded row whose interior [pad, pad + width) is written.
void padRow(float* row, int64_t width, int64_t pad, Pad mode) {
  for (int64_t k = 1; k <= pad; ++k) {
    row[pad - k] = row[mode == Pad::kReflect ? pad + k : pad];
    row[pad + width - 1 + k] = row[mode == Pad::kReflect ? pad + width - 1 - k : pad + width - 1];
  }
}

// Fills the `pad` border rows of a padded plane whose interior rows are complete.
void padRows(float* plane, int64_t height, int64_t rowLength, int64_t pad, Pad mode) {
  const size_t bytes = static_cast<size_t>(rowLength) * sizeof(float);
  for (int64_t k = 1; k <= pad; ++k) {
    std::memcpy(plane + (pad - k) * rowLength, plane + (mode == Pad::kReflect ? pad + k : pad) * rowLength, bytes);
    std::memcpy(plane + (pad + height - 1 + k) * rowLength,
                plane + (mode == Pad::kReflect ? pad + height - 1 - k : pad + height - 1) * rowLength, bytes);
  }
}

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
  const torch::Tensor x = input.contiguous();
  checkPlain(x, "fused::gather");
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const int64_t outH = static_cast<int64_t>(rows.size()), outW = static_cast<int64_t>(cols.size());
  for (const int64_t r : rows) TORCH_CHECK(r >= 0 && r < h, "fused::gather: row index out of range");
  for (const int64_t c : cols) TORCH_CHECK(c >= 0 && c < w, "fused::gather: column index out of range");
  // The longest run of consecutive source columns is copied with memcpy, the rest one by one.
  int64_t runStart = 0, runLength = 1;
  for (int64_t i = 0, start = 0; i < outW; ++i) {
    if (i > 0 && cols[i] != cols[i - 1] + 1) start = i;
    if (i - start + 1 > runLength) runStart = start, runLength = i - start + 1;
  }
  torch::Tensor out = torch::empty({x.size(0), x.size(1), outH, outW}, x.options());
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, planes * outH, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t plane = i / outH, y = i % outH;
      const float* from = src + (plane * h + rows[static_cast<size_t>(y)]) * w;
      float* to = dst + i * outW;
      for (int64_t c = 0; c < runStart; ++c) to[c] = from[cols[static_cast<size_t>(c)]];
      std::memcpy(to + runStart, from + cols[static_cast<size_t>(runStart)], static_cast<size_t>(runLength) * 4);
      for (int64_t c = runStart + runLength; c < outW; ++c) to[c] = from[cols[static_cast<size_t>(c)]];
    }
  });
  return out;
}

torch::Tensor normalizePadded(const Activation& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                              bool relu, const torch::Tensor& residual, int64_t pad, Pad mode) {
  checkPlain(x.data, "fused::normalizePadded");
  const int64_t batch = x.data.size(0), channels = x.channels(), h = x.height(), w = x.width();
  TORCH_CHECK(!x.phased || x.data.size(1) % 4 == 0, "fused::normalizePadded: phased input needs 4C channels");
  TORCH_CHECK(mode == Pad::kReplicate || (pad < h && pad < w), "fused::normalizePadded: reflection pad ", pad,
              " needs sides longer than it, got ", h, "x", w);
  TORCH_CHECK(weight.numel() == channels && bias.numel() == channels, "fused::normalizePadded: ", channels,
              " channels but ", weight.numel(), " weights");
  const torch::Tensor gamma = weight.contiguous(), beta = bias.contiguous();
  if (residual.defined())
    TORCH_CHECK(!x.phased && residual.scalar_type() == torch::kFloat && residual.size(0) == batch &&
                    residual.size(1) == channels && residual.size(2) == h && residual.size(3) == w &&
                    residual.stride(3) == 1,
                "fused::normalizePadded: residual must be [N, C, H, W] with unit column stride, got ",
                residual.sizes());
  const int64_t outH = h + 2 * pad, outW = w + 2 * pad;
  torch::Tensor out = torch::empty({batch, channels, outH, outW}, x.data.options());
  const float* src = x.data.data_ptr<float>();
  const float* res = residual.defined() ? residual.data_ptr<float>() : nullptr;
  float* dst = out.data_ptr<float>();
  const int64_t srcH = x.data.size(2), srcW = x.data.size(3);
  at::parallel_for(0, batch * channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / channels, c = plane % channels;
      // Source plane of phase p (the only one when not phased), and the row/column offset of the phase.
      auto source = [&](int64_t p) { return src + ((n * x.data.size(1)) + (x.phased ? p * channels : 0) + c) * srcH * srcW; };
      Affine affine{};
      if (x.phased) {
        const int64_t hh = h / 2, ww = w / 2;
        affine = planeAffine(
            [&](auto&& visit) {
              for (int64_t p = 0; p < 4; ++p)
                for (int64_t i = 0; i < hh; ++i) visit(source(p) + (i + p / 2) * srcW + p % 2, ww);
            },
            source(0)[0], h * w, eps, gamma.data_ptr<float>()[c], beta.data_ptr<float>()[c]);
      } else {
        affine = planeAffine(
            [&](auto&& visit) {
              for (int64_t i = 0; i < h; ++i) visit(source(0) + i * w, w);
            },
            source(0)[0], h * w, eps, gamma.data_ptr<float>()[c], beta.data_ptr<float>()[c]);
      }
      const float mean = affine.mean, scale = affine.scale, shift = affine.bias;
      float* outPlane = dst + plane * outH * outW;
      const float* resPlane = res ? res + n * residual.stride(0) + c * residual.stride(1) : nullptr;
      for (int64_t y = 0; y < h; ++y) {
        float* row = outPlane + (y + pad) * outW + pad;
        if (x.phased) {
          const int64_t i = y / 2, a = y % 2;
          const float* even = source(2 * a) + (i + a) * srcW;
          const float* odd = source(2 * a + 1) + (i + a) * srcW + 1;
          for (int64_t j = 0; j < w / 2; ++j) {
            row[2 * j] = (even[j] - mean) * scale + shift;
            row[2 * j + 1] = (odd[j] - mean) * scale + shift;
          }
        } else {
          const float* in = source(0) + y * w;
          for (int64_t j = 0; j < w; ++j) row[j] = (in[j] - mean) * scale + shift;
        }
        if (relu)
          for (int64_t j = 0; j < w; ++j) row[j] = row[j] > 0.f ? row[j] : 0.f;
        if (resPlane) {
          const float* r = resPlane + y * residual.stride(2);
          for (int64_t j = 0; j < w; ++j) row[j] += r[j];
        }
        padRow(row - pad, w, pad, mode);
      }
      padRows(outPlane, h, outW, pad, mode);
    }
  });
  return out;
}

torch::Tensor crop(const Activation& x, int64_t top, int64_t left, int64_t h, int64_t w) {
  checkPlain(x.data, "fused::crop");
  TORCH_CHECK(top >= 0 && left >= 0 && top + h <= x.height() && left + w <= x.width(), "fused::crop: window outside");
  const int64_t batch = x.data.size(0), channels = x.channels(), srcH = x.data.size(2), srcW = x.data.size(3);
  torch::Tensor out = torch::empty({batch, channels, h, w}, x.data.options());
  const float* src = x.data.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, batch * channels * h, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t plane = i / h, y = i % h, n = plane / channels, c = plane % channels;
      float* row = dst + i * w;
      if (!x.phased) {
        std::memcpy(row, src + (plane * srcH + top + y) * srcW + left, static_cast<size_t>(w) * sizeof(float));
        continue;
      }
      const int64_t Y = top + y, a = Y % 2, rowIndex = Y / 2 + a;
      const float* even = src + ((n * 4 + 2 * a) * channels + c) * srcH * srcW + rowIndex * srcW;
      const float* odd = src + ((n * 4 + 2 * a + 1) * channels + c) * srcH * srcW + rowIndex * srcW + 1;
      for (int64_t j = 0; j < w; ++j) {
        const int64_t X = left + j;
        row[j] = (X % 2 ? odd : even)[X / 2];
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
  return {torch::cat(kernels, 0).contiguous(), bias.defined() ? bias.repeat({4}) : torch::Tensor()};
}

Activation runPhaseConv(const torch::Tensor& paddedInput, const PhaseConv& conv) {
  return {torch::conv2d(paddedInput, conv.weight, conv.bias), true};
}

}  // namespace stylize::fused
