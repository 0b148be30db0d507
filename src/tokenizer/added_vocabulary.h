// Added tokens (special and not) and how they are cut out of the input before anything else
// sees it, exactly as Hugging Face does: tokens whose `normalized` flag is false are matched on
// the raw text first; tokens whose flag is true are matched afterwards on each normalized gap.
// Within one pass the leftmost match wins and, among matches starting there, the longest; the
// single_word, lstrip and rstrip flags then accept, widen or skip that match.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer::tokenizer {

class Regex;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A piece of the input: either the added token `id` or, when id < 0, text to tokenize.
struct Segment {
  size_t begin = 0, end = 0;
  int32_t id = -1;
};

// One matching pass over a set of added tokens (a byte trie searched leftmost-longest).
class AddedTokenMatcher {
 public:
  AddedTokenMatcher();
  ~AddedTokenMatcher();
  AddedTokenMatcher(AddedTokenMatcher&&) noexcept;
  AddedTokenMatcher& operator=(AddedTokenMatcher&&) noexcept;

  // pattern is what is searched for (the token's content, normalized for the second pass).
  void add(const std::string& pattern, const AddedToken& token);
  bool empty() const { return tokens_.empty(); }

  // Appends the segments of text to out, in order; gaps become text segments. Offsets are
  // relative to text.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    int32_t token = -1;                              // index into tokens_ when a pattern ends here
  };
  std::vector<Node> nodes_;
  std::vector<AddedToken> tokens_;
  bool first_byte_[256] = {};
  std::unique_ptr<Regex> alnum_;  // Rust's char::is_alphanumeric, for single_word

  // Longest pattern starting at text[i]: token index and its end, or -1.
  int32_t longest_at(std::string_view text, size_t i, size_t& end) const;
  bool is_alnum_before(std::string_view text, size_t i) const;
  bool is_alnum_at(std::string_view text, size_t i) const;
};

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_unicode_whitespace(uint32_t cp);

}  // namespace dsinfer::tokenizer
