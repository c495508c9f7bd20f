// YUV 4:2:0 ↔ RGB in LibTorch, on whatever device the planes live: the conversion that lets a GPU receive
// a decoder's own planes (half the bytes of RGB for 4:2:0, or none with hardware decoding) and hand the
// encoder planes back. The CPU pipeline keeps swscale, which is faster there; tests hold this conversion
// to swscale's within one 8-bit level.
#pragma once

#include <torch/types.h>

#include <array>

namespace stylize {

// How a stream's YUV numbers map to RGB: the matrix (luma weights Kr, Kb), the range and the bit depth.
struct YuvFormat {
  enum class Matrix { kBt601, kBt709, kBt2020 };
  Matrix matrix = Matrix::kBt709;
  bool fullRange = false;  // JPEG/"pc" range; else limited ("tv": 16–235 luma, 16–240 chroma at 8 bits)
  int bits = 8;            // 8 or 10
};

// Planes of one picture, each [H, W] (luma) or [H/2, W/2] (chroma, rounded up), as stored: uint8 for 8 bits,
// int16 holding 0..1023 for 10 bits. `uv` instead of u and v: NV12/P010 interleaved chroma, [H/2, W/2, 2].
struct YuvPlanes {
  torch::Tensor y, u, v, uv;
};

// P010 stores 10 bits in the top of each 16-bit word; read as int16 (LibTorch 1.13 has no uint16) the
// words may be negative. → int16 holding 0..1023, as YuvPlanes expects.
torch::Tensor topTenBits(const torch::Tensor& words);

// → [3, H, W] float32 RGB in [0, 1] on the planes' device. Chroma is repeated over each 2×2 block (the
// decoder's own sample grid; the network cannot tell the difference from interpolation).
torch::Tensor yuvToRgb(const YuvPlanes& planes, const YuvFormat& format);

// [3, H, W] RGB in [0, 1] (any float type or device) → planar 4:2:0 (u and v set; uint8 or int16 as
// above), chroma as the mean of each 2×2 block; odd sides keep their last half block.
YuvPlanes rgbToYuv(const torch::Tensor& rgb, const YuvFormat& format);

}  // namespace stylize
