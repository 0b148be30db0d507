#include "serve/reasoning.h"

namespace dsinfer::serve {
namespace {

constexpr std::string_view kOpen = "<think>", kClose = "</think>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Length of the longest suffix of s that is a proper prefix of tag.
size_t partial_tag(std::string_view s, std::string_view tag) {
  for (size_t len = std::min(s.size(), tag.size() - 1); len > 0; --len)
    if (s.substr(s.size() - len) == tag.substr(0, len)) return len;
  return 0;
}

}  // namespace

void ReasoningSplitter::push(std::string_view text, std::string& reasoning, std::string& content) {
  held_.append(text);
  for (;;) {
    switch (state_) {
      case kStart: {
        size_t i = 0;
        while (i < held_.size() && is_space(held_[i])) ++i;
        std::string_view rest = std::string_view(held_).substr(i);
        if (rest.substr(0, kOpen.size()) == kOpen) {
          held_.erase(0, i + kOpen.size());
          state_ = kReasoning;
          continue;
        }
        if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return;  // undecided
        state_ = kAnswer;
        continue;
      }
      case kReasoning: {
        size_t at = held_.find(kClose);
        if (at != std::string::npos) {
          reasoning.append(held_, 0, at);
          held_.erase(0, at + kClose.size());
          state_ = kAnswerStart;
          continue;
        }
        size_t keep = partial_tag(held_, kClose);
        reasoning.append(held_, 0, held_.size() - keep);
        held_.erase(0, held_.size() - keep);
        return;
      }
      case kAnswerStart: {  // the blank line after </think> belongs to neither
        size_t i = 0;
        while (i < held_.size() && is_space(held_[i])) ++i;
        held_.erase(0, i);
        if (held_.empty()) return;
        state_ = kAnswer;
        continue;
      }
      case kAnswer:
        content.append(held_);
        held_.clear();
        return;
    }
  }
}

void ReasoningSplitter::flush(std::string& reasoning, std::string& content) {
  if (state_ == kReasoning)
    reasoning.append(held_);
  else if (state_ != kAnswerStart)
    content.append(held_);
  held_.clear();
}

}  // namespace dsinfer::serve
