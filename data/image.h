// Still images as tensors: [3, H, W] float32 RGB in [0, 1] on the CPU.
#pragma once

#include <torch/types.h>

#include <filesystem>

namespace stylize {

constexpr int64_t kDefaultMaxImagePixels = 100'000'000;

// JPEG, PNG, WebP, BMP, TIFF or PNM, recognised by their first bytes (OpenCV's other decoders are not
// reached: its DICOM one aborts on malformed input). EXIF orientation is applied, grayscale
// becomes RGB, alpha is composited over white, 16-bit is scaled to [0, 1]. Throws Error naming the file
// when it is missing, empty, undecodable or larger than `maxPixels`.
torch::Tensor loadImage(const std::filesystem::path& path, int64_t maxPixels = kDefaultMaxImagePixels);
// The same from a file's bytes; `where` names it in errors.
torch::Tensor decodeImage(const std::string& bytes, const std::string& where,
                          int64_t maxPixels = kDefaultMaxImagePixels);

// Format from the extension; written to a temporary name and renamed, so a failure leaves nothing.
void saveImage(const std::filesystem::path& path, const torch::Tensor& image, int jpegQuality = 95);
// The same for packed 8-bit RGB rows (`stride` bytes apart), without LibTorch: for threads that must not
// start LibTorch work (see infer/live_session.cpp).
void saveImageBytes(const std::filesystem::path& path, const uint8_t* rgb, int width, int height, int stride,
                    int jpegQuality = 95);

// Fails early, before any expensive work, if `path` has no writable folder or an unknown extension.
void checkImageOutputPath(const std::filesystem::path& path);

// The image after JPEG encoding at `quality` (1..100) and decoding: quantised to 8 bits, chroma halved, 8×8
// blocks requantised, as a video codec does to every frame. Accepts [3,H,W] or [N,3,H,W] in [0, 1].
torch::Tensor jpegRoundTrip(const torch::Tensor& image, int quality);

// High-quality resampling (area when shrinking, bicubic when enlarging); accepts [3,H,W] or [N,3,H,W].
torch::Tensor resizeImage(const torch::Tensor& image, int64_t height, int64_t width);
// Scales so that the longer side is `longSide` (aspect kept); returns `image` itself when it already is.
torch::Tensor resizeLongSide(const torch::Tensor& image, int64_t longSide);

}  // namespace stylize
