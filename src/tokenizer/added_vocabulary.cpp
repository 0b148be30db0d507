#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

bool is_unicode_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

AddedTokenMatcher::AddedTokenMatcher() : nodes_(1) {}
AddedTokenMatcher::~AddedTokenMatcher() = default;
AddedTokenMatcher::AddedTokenMatcher(AddedTokenMatcher&&) noexcept = default;
AddedTokenMatcher& AddedTokenMatcher::operator=(AddedTokenMatcher&&) noexcept = default;

void AddedTokenMatcher::add(const std::string& pattern, const AddedToken& token) {
  if (pattern.empty()) return;  // an empty token can never be matched
  int32_t node = 0;
  for (char ch : pattern) {
    uint8_t b = uint8_t(ch);
    auto& next = nodes_[node].next;
    auto it = std::lower_bound(next.begin(), next.end(), b, [](auto& e, uint8_t v) { return e.first < v; });
    if (it != next.end() && it->first == b) {
      node = it->second;
    } else {
      int32_t created = int32_t(nodes_.size());
      next.insert(it, {b, created});
      nodes_.emplace_back();
      node = created;
    }
  }
  if (nodes_[node].token >= 0) return;  // the same pattern twice: the first one registered wins
  nodes_[node].token = int32_t(tokens_.size());
  tokens_.push_back(token);
  first_byte_[uint8_t(pattern[0])] = true;
  if (token.single_word && !alnum_) alnum_ = std::make_unique<Regex>(translate_onig_pattern("[\\p{Alphabetic}\\p{N}]"), "added token");
}

int32_t AddedTokenMatcher::longest_at(std::string_view text, size_t i, size_t& end) const {
  int32_t node = 0, best = -1;
  for (size_t k = i; k < text.size(); ++k) {
    auto& next = nodes_[node].next;
    uint8_t b = uint8_t(text[k]);
    auto it = std::lower_bound(next.begin(), next.end(), b, [](auto& e, uint8_t v) { return e.first < v; });
    if (it == next.end() || it->first != b) break;
    node = it->second;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      end = k + 1;
    }
  }
  return best;
}

bool AddedTokenMatcher::is_alnum_at(std::string_view text, size_t i) const {
  if (i >= text.size()) return false;
  size_t len = utf8_lead_length(uint8_t(text[i]));
  Span m;
  return alnum_->find(text.substr(i, len), 0, m);
}

bool AddedTokenMatcher::is_alnum_before(std::string_view text, size_t i) const {
  if (i == 0) return false;
  size_t k = i - 1;
  while (k > 0 && (uint8_t(text[k]) & 0xC0) == 0x80) --k;
  return is_alnum_at(text.substr(0, i), k);
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  if (tokens_.empty()) {
    if (!text.empty()) out.push_back({0, text.size(), -1});
    return;
  }
  size_t emitted = 0;  // text before this offset has been emitted
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte_[uint8_t(text[i])]) {
      ++i;
      continue;
    }
    size_t end = 0;
    int32_t t = longest_at(text, i, end);
    if (t < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = tokens_[t];
    size_t start = i, stop = end;
    i = end;  // the search resumes after this match even if the match is then rejected
    if (start < emitted) continue;  // overlaps what an rstrip already consumed
    if (tok.single_word && (is_alnum_before(text, start) || is_alnum_at(text, stop))) continue;
    if (tok.lstrip) {
      size_t s = start;
      while (s > emitted) {
        size_t k = s - 1;
        while (k > 0 && (uint8_t(text[k]) & 0xC0) == 0x80) --k;
        size_t kk = k;
        if (!is_unicode_whitespace(next_code_point(text, kk))) break;
        s = k;
      }
      start = s;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        size_t k = stop;
        if (!is_unicode_whitespace(next_code_point(text, k))) break;
        stop = k;
      }
      i = std::max(i, stop);
    }
    if (emitted < start) out.push_back({emitted, start, -1});
    out.push_back({start, stop, tok.id});
    emitted = stop;
  }
  if (emitted < text.size()) out.push_back({emitted, text.size(), -1});
}

}  // namespace dsinfer::tokenizer
