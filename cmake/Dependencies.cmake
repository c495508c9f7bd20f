# Optional dependencies. LibTorch-only parts (data's safetensors, nets, train) build without them,
# so a machine that only has a PyTorch wheel can still build the loss network and the benches.

# OpenCV: its CMake config when present (libopencv-dev), else the component packages Debian splits it
# into (libopencv-{core,imgproc,imgcodecs,video}-dev), which ship no config file.
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs video)
if(OpenCV_FOUND)
  add_library(stylize_opencv INTERFACE)
  target_include_directories(stylize_opencv SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
  target_link_libraries(stylize_opencv INTERFACE ${OpenCV_LIBS})
  set(STYLIZE_HAVE_OPENCV ON)
else()
  find_path(STYLIZE_OPENCV_INCLUDE opencv2/core.hpp PATH_SUFFIXES opencv4)
  set(STYLIZE_HAVE_OPENCV ON)
  set(_opencv_libs)
  foreach(component core imgproc imgcodecs video)
    find_library(STYLIZE_OPENCV_${component} opencv_${component})
    if(NOT STYLIZE_OPENCV_${component})
      set(STYLIZE_HAVE_OPENCV OFF)
    endif()
    list(APPEND _opencv_libs ${STYLIZE_OPENCV_${component}})
  endforeach()
  if(STYLIZE_OPENCV_INCLUDE AND STYLIZE_HAVE_OPENCV)
    add_library(stylize_opencv INTERFACE)
    target_include_directories(stylize_opencv SYSTEM INTERFACE ${STYLIZE_OPENCV_INCLUDE})
    target_link_libraries(stylize_opencv INTERFACE ${_opencv_libs})
  else()
    set(STYLIZE_HAVE_OPENCV OFF)
  endif()
endif()

find_package(PkgConfig QUIET)
set(STYLIZE_HAVE_VIDEO OFF)
if(PkgConfig_FOUND)
  pkg_check_modules(LIBAV QUIET IMPORTED_TARGET
    libavformat libavcodec libavutil libswscale libswresample libavdevice libavfilter)
  if(LIBAV_FOUND AND STYLIZE_HAVE_OPENCV)
    set(STYLIZE_HAVE_VIDEO ON)
  endif()
endif()

find_package(SDL2 QUIET)
set(STYLIZE_HAVE_SDL2 ${SDL2_FOUND})

message(STATUS "Stylize: OpenCV ${STYLIZE_HAVE_OPENCV}, FFmpeg ${STYLIZE_HAVE_VIDEO}, SDL2 ${STYLIZE_HAVE_SDL2}")

# ONNX (libonnx-dev): `stylize import` of .onnx files and `stylize export`.
find_package(ONNX CONFIG QUIET)
