// One exception type for every user-facing failure: its message is a single line that names the file
// (or flag) and the problem, ready to print as "stylize: error: <message>".
#pragma once

#include <stdexcept>
#include <string>

namespace stylize {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace stylize
