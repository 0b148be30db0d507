#include "engine/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace dsinfer::engine {

StopSet::StopSet(std::vector<std::string> stops) : stops_(std::move(stops)) {
  failure_.reserve(stops_.size());
  for (const std::string& s : stops_) {
    std::vector<uint32_t> f(s.size(), 0);
    for (size_t i = 1, k = 0; i < s.size(); ++i) {
      while (k > 0 && s[i] != s[k]) k = f[k - 1];
      if (s[i] == s[k]) ++k;
      f[i] = uint32_t(k);
    }
    failure_.push_back(std::move(f));
  }
}

StopMatcher::StopMatcher(std::shared_ptr<const StopSet> stops) : stops_(std::move(stops)) {
  if (stops_) state_.assign(stops_->size(), 0);
  // What is ever held: a stop string's prefix plus one token's text.
  size_t longest = 0;
  for (size_t k = 0; stops_ && k < stops_->size(); ++k) longest = std::max(longest, stops_->stop(k).size());
  held_.reserve(longest + 256);
}

StopMatcher::StopMatcher(std::vector<std::string> stops)
    : StopMatcher(std::make_shared<const StopSet>(std::move(stops))) {}

std::string StopMatcher::push(std::string_view text, bool& stopped) {
  std::string out;
  push(text, stopped, out);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  flush(out);
  return out;
}

void StopMatcher::push(std::string_view text, bool& stopped, std::string& out) {
  stopped = false;
  const size_t old = held_.size();
  held_.append(text);
  if (!stops_ || stops_->size() == 0) {
    out.append(held_);
    held_.clear();
    return;
  }
  // Earliest start of a stop string in held_. Every state is at most held_'s length before this
  // push (held_ keeps the longest matched prefix), so a match lies wholly inside held_.
  size_t first = std::string::npos;
  for (size_t k = 0; k < stops_->size(); ++k) {
    const std::string& s = stops_->stop(k);
    const std::vector<uint32_t>& f = stops_->failure(k);
    size_t q = state_[k];
    for (size_t i = old; i < held_.size(); ++i) {
      while (q > 0 && held_[i] != s[q]) q = f[q - 1];
      if (held_[i] == s[q]) ++q;
      if (q == s.size()) {
        first = std::min(first, i + 1 - s.size());
        break;
      }
    }
    state_[k] = uint32_t(q);
  }
  if (first != std::string::npos) {
    stopped = true;
    out.append(held_, 0, first);
    held_.clear();
    std::fill(state_.begin(), state_.end(), 0);
    return;
  }
  // Keep the longest tail that is a proper prefix of some stop string.
  const size_t keep = *std::max_element(state_.begin(), state_.end());
  out.append(held_, 0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
}

void StopMatcher::flush(std::string& out) {
  std::fill(state_.begin(), state_.end(), 0);
  out.append(held_);
  held_.clear();
}

}  // namespace dsinfer::engine
