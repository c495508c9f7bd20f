// NVDEC decoding through FFmpeg's generic hwaccel API (no CUDA headers): decoded frames stay in GPU memory
// and are wrapped as CUDA tensors without a copy. Every CUDA-only line of the video path is in this file
// and hw_decode.cpp, so the part that CPU tests cannot reach is small and in one place.
#pragma once

#include <optional>
#include <string>

#include "infer/ffmpeg.h"

namespace stylize {

enum class HwAccel { kNone, kAuto, kCuda };  // auto: CUDA when LibTorch sees a CUDA device

HwAccel parseHwAccel(const std::string& name);  // "none", "auto", "cuda"; throws Error otherwise

// Sets `codec` up to decode on the CUDA device (call before avcodec_open2). Returns false, with the reason
// in `why`, when this FFmpeg, codec or machine cannot: the caller decodes in software.
bool enableCudaDecoding(AVCodecContext* codec, int cudaDevice, std::string& why);

// A CUDA frame's NV12 or P010 planes as CUDA tensors over the frame's memory (no copy: the frame must stay
// referenced until work reading them has finished, see finishReadingCudaFrames()).
std::optional<YuvPlanes> cudaFramePlanes(const AVFrame& frame, int cudaDevice);

// Waits for the GPU work queued on the planes of CUDA frames, before those frames go back to the decoder's
// pool. A no-op without CUDA.
void finishReadingCudaFrames();

}  // namespace stylize
