// Stop strings across token boundaries. Generated text is held back while its tail could still
// grow into a stop string, so a stop string (or any part of it) is never streamed to a client.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dsinfer::engine {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops = {}) : stops_(std::move(stops)) {}

  // Adds newly decoded text; returns the text that is now safe to emit. When a stop string
  // appears, returns the text before it, sets `stopped`, and drops everything after.
  std::string push(std::string_view text, bool& stopped);
  // The held-back tail, once generation ends without a stop string.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

}  // namespace dsinfer::engine
