// Errors and checks. Invalid input anywhere (config, checkpoint, request, flag) throws
// dsinfer::Error with a message a user can act on; the CLI and the server catch it at their
// boundary. Kernels assume validated input and do not throw.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace dsinfer {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates anything streamable: str("tensor ", name, " has ", n, " dims").
template <typename... Parts>
std::string str(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(str(std::forward<Parts>(parts)...));
}

template <typename... Parts>
void check(bool ok, Parts&&... parts) {
  if (!ok) fail(std::forward<Parts>(parts)...);
}

}  // namespace dsinfer
