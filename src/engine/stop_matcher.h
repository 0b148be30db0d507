// Stop strings across token boundaries. Generated text is held back while its tail could still
// grow into a stop string, so a stop string (or any part of it) is never streamed to a client.
//
// A request's stop strings are compiled once into a StopSet that its n choices share (up to
// kMaxStopStrings of kMaxStopBytes each: a copy per choice would be 16 x 16 KiB). Matching is
// Knuth-Morris-Pratt, one automaton state per stop string carried across pushes, so each new
// byte costs O(number of stop strings) however long the strings are.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer::engine {

class StopSet {
 public:
  explicit StopSet(std::vector<std::string> stops);
  size_t size() const { return stops_.size(); }
  const std::string& stop(size_t i) const { return stops_[i]; }
  // KMP failure function of stop i: for a matched prefix of length q + 1, the length of its
  // longest proper prefix that is also its suffix.
  const std::vector<uint32_t>& failure(size_t i) const { return failure_[i]; }

 private:
  std::vector<std::string> stops_;
  std::vector<std::vector<uint32_t>> failure_;
};

class StopMatcher {
 public:
  StopMatcher() = default;
  explicit StopMatcher(std::shared_ptr<const StopSet> stops);
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds newly decoded text; returns the text that is now safe to emit. When a stop string
  // appears, returns the text before it, sets `stopped`, and drops everything after.
  std::string push(std::string_view text, bool& stopped);
  // The held-back tail, once generation ends without a stop string.
  std::string flush();
  // The same, appending to `out` and keeping the held-back buffer's capacity: no allocation per
  // token once it has grown (the engine's per-token path).
  void push(std::string_view text, bool& stopped, std::string& out);
  void flush(std::string& out);

 private:
  std::shared_ptr<const StopSet> stops_;
  std::vector<uint32_t> state_;  // per stop string: bytes of it matched by the tail of held_
  std::string held_;
};

}  // namespace dsinfer::engine
