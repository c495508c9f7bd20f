// An SDL2 window that shows RGB frames, letterboxed, resizable, with a fullscreen toggle. Used by
// `stylize video --preview` and `stylize live`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct SDL_Window;
struct SDL_Renderer;
struct SDL_Texture;

namespace stylize {

class PreviewWindow {
 public:
  // Throws Error with a one-line explanation when there is no display (SDL cannot open a window).
  PreviewWindow(const std::string& title, int width, int height);
  ~PreviewWindow();
  PreviewWindow(const PreviewWindow&) = delete;
  PreviewWindow& operator=(const PreviewWindow&) = delete;

  // Packed RGB24 rows with `pitch` bytes each; the window keeps the frame's aspect ratio.
  void show(const uint8_t* rgb, int width, int height, int pitch);

  // Handles pending window events. Returns false once the window was closed (or q/Esc pressed); the
  // other keys pressed since the last call (SDL keycodes) go to `keys`. F and F11 toggle fullscreen.
  bool poll(std::vector<int>* keys = nullptr);

  void setTitle(const std::string& title);

 private:
  SDL_Window* window_ = nullptr;
  SDL_Renderer* renderer_ = nullptr;
  SDL_Texture* texture_ = nullptr;
  int textureWidth_ = 0, textureHeight_ = 0;
  bool fullscreen_ = false;
};

}  // namespace stylize
