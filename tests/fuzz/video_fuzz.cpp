// libFuzzer target: opening and decoding a video from memory (infer/video_decoder.cpp: FFmpeg's demuxers and
// decoders behind our timestamp handling, the --start/--duration window and the RGB conversion) must give
// frames of the announced size, packets of other streams, or throw one Error. Frame times may go backwards
// in a corrupt file (the fuzzer found an H.264 mp4 whose edits repeat 0, 100, 200, 400): the encoder makes
// them strictly increasing, which the video tests cover; here they only have to be set or absent.
// tools/fuzz runs it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/error.h"
#include "infer/video_decoder.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  stylize::av::quietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  stylize::ReadOptions options;
  options.memory = &bytes;
  try {
    stylize::VideoDecoder decoder("fuzz", options);
    const stylize::VideoInfo& info = decoder.info();
    if (info.width <= 0 || info.height <= 0) __builtin_trap();
    stylize::VideoDecoder::Item item;
    for (int items = 0; items < 64 && decoder.next(item); ++items) {  // a bounded read: speed over depth
      if (!item.frame) continue;
      if (item.frame->width != info.width || item.frame->height != info.height) __builtin_trap();
    }
  } catch (const stylize::Error&) {
  }
  return 0;
}
