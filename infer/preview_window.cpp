#include "infer/preview_window.h"

#include <SDL2/SDL.h>

#include <cstdlib>

#include "data/error.h"

namespace stylize {

PreviewWindow::PreviewWindow(const std::string& title, int width, int height) {
  if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0)
    throw Error(std::string("no display for the preview window: ") + SDL_GetError() +
                " (set DISPLAY, or run without the window)");
  // Without a display SDL falls back to its offscreen driver: a window nobody sees. Only a deliberate
  // SDL_VIDEODRIVER (tests, headless capture) may use it.
  const std::string driver = SDL_GetCurrentVideoDriver() ? SDL_GetCurrentVideoDriver() : "";
  const char* chosen = std::getenv("SDL_VIDEODRIVER");
  if ((driver == "offscreen" || driver == "dummy") && !(chosen && *chosen)) {
    SDL_QuitSubSystem(SDL_INIT_VIDEO);
    throw Error(
        "no display for the preview window (DISPLAY and WAYLAND_DISPLAY are unset); run without the window, "
        "or set SDL_VIDEODRIVER=offscreen to render headless");
  }
  // A 4K source would open a window larger than the screen: start at most 1280 wide, the user resizes.
  const double scale = std::min(1.0, 1280.0 / std::max(width, height));
  window_ = SDL_CreateWindow(title.c_str(), SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, int(width * scale),
                             int(height * scale), SDL_WINDOW_RESIZABLE);
  if (!window_) {
    const std::string why = SDL_GetError();
    SDL_QuitSubSystem(SDL_INIT_VIDEO);
    throw Error("cannot open the preview window: " + why);
  }
  renderer_ = SDL_CreateRenderer(window_, -1, 0);
  if (!renderer_) renderer_ = SDL_CreateRenderer(window_, -1, SDL_RENDERER_SOFTWARE);
  if (!renderer_) {
    const std::string why = SDL_GetError();
    SDL_DestroyWindow(window_);
    SDL_QuitSubSystem(SDL_INIT_VIDEO);
    throw Error("cannot draw in the preview window: " + why);
  }
  SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
}

PreviewWindow::~PreviewWindow() {
  if (texture_) SDL_DestroyTexture(texture_);
  SDL_DestroyRenderer(renderer_);
  SDL_DestroyWindow(window_);
  SDL_QuitSubSystem(SDL_INIT_VIDEO);
}

void PreviewWindow::show(const uint8_t* rgb, int width, int height, int pitch) {
  if (!texture_ || width != textureWidth_ || height != textureHeight_) {
    if (texture_) SDL_DestroyTexture(texture_);
    texture_ = SDL_CreateTexture(renderer_, SDL_PIXELFORMAT_RGB24, SDL_TEXTUREACCESS_STREAMING, width, height);
    if (!texture_) throw Error(std::string("preview window: ") + SDL_GetError());
    textureWidth_ = width, textureHeight_ = height;
    SDL_RenderSetLogicalSize(renderer_, width, height);  // letterbox, aspect kept
  }
  SDL_UpdateTexture(texture_, nullptr, rgb, pitch);
  SDL_SetRenderDrawColor(renderer_, 0, 0, 0, 255);
  SDL_RenderClear(renderer_);
  SDL_RenderCopy(renderer_, texture_, nullptr, nullptr);
  SDL_RenderPresent(renderer_);
}

bool PreviewWindow::poll(std::vector<int>* keys) {
  SDL_Event event;
  bool open = true;
  while (SDL_PollEvent(&event)) {
    if (event.type == SDL_QUIT) open = false;
    if (event.type == SDL_WINDOWEVENT && event.window.event == SDL_WINDOWEVENT_CLOSE) open = false;
    if (event.type != SDL_KEYDOWN) continue;
    const SDL_Keycode key = event.key.keysym.sym;
    if (key == SDLK_q || key == SDLK_ESCAPE) {
      open = false;
    } else if (key == SDLK_f || key == SDLK_F11) {
      fullscreen_ = !fullscreen_;
      SDL_SetWindowFullscreen(window_, fullscreen_ ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
    } else if (keys) {
      keys->push_back(key);
    }
  }
  return open;
}

void PreviewWindow::setTitle(const std::string& title) { SDL_SetWindowTitle(window_, title.c_str()); }

}  // namespace stylize
