#include "data/image.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/error.h"
#include "data/files.h"

namespace fs = std::filesystem;

namespace stylize {
namespace {

std::string lowerExtension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

bool isWritableExtension(const std::string& ext) {
  for (const char* e : {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
    if (ext == e) return true;
  return false;
}

// 8- or 16-bit BGR(A)/gray Mat → float RGB tensor in [0, 1].
torch::Tensor matToTensor(const cv::Mat& decoded) {
  cv::Mat m;
  const double scale = decoded.depth() == CV_16U ? 1.0 / 65535.0 : decoded.depth() == CV_8U ? 1.0 / 255.0 : 1.0;
  decoded.convertTo(m, CV_MAKETYPE(CV_32F, decoded.channels()), scale);
  if (m.channels() == 1) {
    cv::cvtColor(m, m, cv::COLOR_GRAY2RGB);
  } else if (m.channels() == 4) {
    std::vector<cv::Mat> bgra;
    cv::split(m, bgra);
    for (int c = 0; c < 3; ++c) bgra[c] = bgra[c].mul(bgra[3]) + (1.0f - bgra[3]);  // over white
    bgra.pop_back();
    cv::merge(bgra, m);
    cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  } else {
    cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  }
  torch::Tensor hwc = torch::from_blob(m.data, {m.rows, m.cols, 3}, torch::kFloat32);
  return hwc.permute({2, 0, 1}).clone().clamp_(0, 1);
}

// [3, H, W] in [0, 1] → packed 8-bit RGB [H, W, 3] on the CPU.
torch::Tensor toRgbBytes(const torch::Tensor& image) {
  const torch::Tensor bytes =
      image.detach().to(torch::kCPU, torch::kFloat32).clamp(0, 1).mul(255).round_().to(torch::kUInt8);
  return bytes.permute({1, 2, 0}).contiguous();
}

// Packed 8-bit RGB rows → the BGR OpenCV encodes.
cv::Mat rgbBytesToBgr(const uint8_t* rgb, int width, int height, int stride) {
  const cv::Mat view(height, width, CV_8UC3, const_cast<uint8_t*>(rgb), size_t(stride));
  cv::Mat bgr;
  cv::cvtColor(view, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

// An 8-bit BGR picture in the format of `ext` (".jpg", ".png", ...); `what` names it in the error.
std::vector<uchar> encodeImage(const std::string& ext, const cv::Mat& bgr, int quality, const std::string& what) {
  std::vector<int> params;
  if (ext == ".jpg" || ext == ".jpeg") params = {cv::IMWRITE_JPEG_QUALITY, quality};
  if (ext == ".webp") params = {cv::IMWRITE_WEBP_QUALITY, quality};
  std::vector<uchar> encoded;
  if (!cv::imencode(ext, bgr, encoded, params)) throw Error(what + ": encoding as " + ext + " failed");
  return encoded;
}

// fn applied to each image of an [N, 3, H, W] batch, or to a single [3, H, W] image.
template <typename Fn>
torch::Tensor eachImage(const torch::Tensor& images, Fn&& fn) {
  if (images.dim() != 4) return fn(images);
  std::vector<torch::Tensor> items;
  for (const torch::Tensor& item : images.unbind(0)) items.push_back(fn(item));
  return torch::stack(items);
}

// resizeImage() of one [3, H, W] image.
torch::Tensor resizeOne(const torch::Tensor& image, int64_t height, int64_t width) {
  if (image.size(1) == height && image.size(2) == width) return image;
  TORCH_CHECK(height > 0 && width > 0, "resizeImage: empty target size");
  torch::Tensor hwc = image.detach().to(torch::kCPU, torch::kFloat32).permute({1, 2, 0}).contiguous();
  cv::Mat src(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_32FC3, hwc.data_ptr());
  cv::Mat dst;
  const bool shrinking = height * width < image.size(1) * image.size(2);
  cv::resize(src, dst, cv::Size(static_cast<int>(width), static_cast<int>(height)), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_CUBIC);
  torch::Tensor out = torch::from_blob(dst.data, {height, width, 3}, torch::kFloat32);
  return out.permute({2, 0, 1}).clamp(0, 1).contiguous().to(image.device());
}

}  // namespace

torch::Tensor loadImage(const fs::path& path, int64_t maxPixels) {
  return decodeImage(readFile(path), path.string(), maxPixels);
}

namespace {
// The formats Stylize reads, by their first bytes. OpenCV also carries decoders for DICOM, JPEG 2000, HDR,
// EXR, Sun raster and more, which a file can reach by its contents alone; the DICOM one aborts the process
// on malformed input (an assert in GDCM, found by tests/fuzz/image_fuzz.cpp), so only these get through.
bool isSupportedImage(const std::string& b) {
  // OpenCV picks its decoder by signature, and DICOM's ("DICM" at byte 128) is checked before WebP's and
  // others': a file that starts like a WebP with DICM at 128 still reached the aborting decoder.
  if (b.size() >= 132 && b.compare(128, 4, "DICM") == 0) return false;
  auto starts = [&](const char* magic, size_t n, size_t at = 0) {
    return b.size() >= at + n && b.compare(at, n, magic, n) == 0;
  };
  return starts("\xFF\xD8\xFF", 3) ||                                   // JPEG
         starts("\x89PNG\r\n\x1A\n", 8) ||                              // PNG
         (starts("RIFF", 4) && starts("WEBP", 4, 8)) ||                 // WebP
         starts("BM", 2) ||                                             // BMP
         starts("II*\0", 4) || starts("MM\0*", 4) ||                    // TIFF
         (b.size() >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6');  // PBM/PGM/PPM
}
}  // namespace

torch::Tensor decodeImage(const std::string& bytes, const std::string& where, int64_t maxPixels) {
  if (bytes.empty()) throw Error(where + ": file is empty");
  if (!isSupportedImage(bytes)) throw Error(where + ": not a JPEG, PNG, WebP, BMP, TIFF or PNM image");
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  // IMREAD_COLOR applies EXIF orientation but drops alpha and depth, so JPEG (which has neither) goes
  // that way and every other format is decoded unchanged to keep alpha and 16-bit data.
  const bool isJpeg =
      bytes.size() > 2 && static_cast<unsigned char>(bytes[0]) == 0xFF && static_cast<unsigned char>(bytes[1]) == 0xD8;
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(buffer, isJpeg ? cv::IMREAD_COLOR : cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception&) {
    decoded.release();
  }
  if (decoded.empty()) throw Error(where + ": not a readable image (corrupt or unsupported format)");
  if (static_cast<int64_t>(decoded.rows) * decoded.cols > maxPixels)
    throw Error(where + ": " + std::to_string(decoded.cols) + "x" + std::to_string(decoded.rows) +
                " exceeds the limit of " + std::to_string(maxPixels / 1'000'000) + " megapixels");
  if (decoded.depth() != CV_8U && decoded.depth() != CV_16U && decoded.depth() != CV_32F)
    throw Error(where + ": unsupported sample depth");
  return matToTensor(decoded);
}

void checkImageOutputPath(const fs::path& path) {
  if (!isWritableExtension(lowerExtension(path)))
    throw Error(path.string() + ": unknown image extension (use .jpg, .png, .webp, .bmp or .tiff)");
  checkWritable(path);
}

void saveImage(const fs::path& path, const torch::Tensor& image, int jpegQuality) {
  checkImageOutputPath(path);
  if (image.dim() != 3 || image.size(0) != 3) throw Error(path.string() + ": expected a [3, H, W] image tensor");
  const torch::Tensor hwc = toRgbBytes(image);
  saveImageBytes(path, hwc.data_ptr<uint8_t>(), int(hwc.size(1)), int(hwc.size(0)), int(hwc.size(1)) * 3, jpegQuality);
}

void saveImageBytes(const fs::path& path, const uint8_t* rgb, int width, int height, int stride, int jpegQuality) {
  checkImageOutputPath(path);
  const std::string ext = lowerExtension(path);
  const std::vector<uchar> encoded =
      encodeImage(ext, rgbBytesToBgr(rgb, width, height, stride), jpegQuality, path.string());
  writeFileAtomically(path, std::string(encoded.begin(), encoded.end()));
}

torch::Tensor jpegRoundTrip(const torch::Tensor& images, int quality) {
  return eachImage(images, [quality](const torch::Tensor& image) {
    const torch::Tensor hwc = toRgbBytes(image);
    const int width = int(hwc.size(1)), height = int(hwc.size(0));
    const std::vector<uchar> encoded =
        encodeImage(".jpg", rgbBytesToBgr(hwc.data_ptr<uint8_t>(), width, height, width * 3), quality, "jpegRoundTrip");
    return matToTensor(cv::imdecode(encoded, cv::IMREAD_COLOR)).to(image.device(), image.scalar_type());
  });
}

torch::Tensor resizeImage(const torch::Tensor& images, int64_t height, int64_t width) {
  return eachImage(images, [height, width](const torch::Tensor& image) { return resizeOne(image, height, width); });
}

torch::Tensor resizeLongSide(const torch::Tensor& image, int64_t longSide) {
  const int64_t h = image.size(-2), w = image.size(-1);
  if (std::max(h, w) == longSide) return image;
  const double scale = static_cast<double>(longSide) / std::max(h, w);
  return resizeImage(image, std::max<int64_t>(1, std::lround(h * scale)), std::max<int64_t>(1, std::lround(w * scale)));
}

}  // namespace stylize
