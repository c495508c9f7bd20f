// Text drawn straight into RGB pixels with a built-in 5×7 font: the live view's status line needs no
// font files and no SDL_ttf.
#pragma once

#include <cstdint>
#include <string>

namespace stylize {

// Draws `text` (letters are shown upper-case; unknown characters as blanks) at (x, y) on a dimmed box,
// each font pixel `scale`×`scale` screen pixels. Clipped to the image. Returns the text width in pixels.
int drawText(uint8_t* rgb, int width, int height, int pitch, int x, int y, const std::string& text, int scale = 2);

}  // namespace stylize
