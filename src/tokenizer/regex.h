// A compiled PCRE2 regular expression (UTF + Unicode properties, JIT) that behaves like the
// Oniguruma regexes Hugging Face's tokenizers compile from tokenizer.json: translate_onig_pattern
// maps the few escapes whose meaning differs (\s includes U+0085, \w is letters, marks, decimal
// digits and connector punctuation, \h is a hex digit) and ^/$ match at line breaks as in Ruby
// syntax. Matching is thread-safe: each thread keeps its own match data and JIT stack.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer::tokenizer {

struct Span {
  size_t begin = 0, end = 0;
};

class Regex {
 public:
  // pattern is PCRE2 syntax; throws Error naming `what` (e.g. "pre_tokenizer Split") when it
  // does not compile.
  Regex(const std::string& pattern, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Leftmost match in subject at or after `from`. subject must be valid UTF-8 and `from` a
  // character boundary; the subject is the whole string (lookarounds see nothing outside it).
  bool find(std::string_view subject, size_t from, Span& match) const;

  // All non-overlapping matches, left to right; an empty match right after the previous match
  // is skipped, as Rust's find_iter does.
  void find_all(std::string_view subject, std::vector<Span>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

// Oniguruma (Ruby syntax) pattern -> PCRE2 pattern with the same meaning, Unicode properties
// included (extended from PCRE2's Unicode 14.0 to the 16.0 Hugging Face uses).
std::string translate_onig_pattern(std::string_view onig);

}  // namespace dsinfer::tokenizer
