// The pre-tokenizer of tokenizer.json: how text between added tokens is cut into words before
// BPE. Supported: Sequence, Split (Regex or String pattern, every behavior, invert), ByteLevel
// (with or without its regex, add_prefix_space), Digits, Whitespace, WhitespaceSplit and
// Punctuation. Each step cuts every piece the previous step produced, as Hugging Face does; the
// pieces are streamed to a sink without being copied.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/regex.h"

namespace dsinfer::tokenizer {

class PieceSink {
 public:
  virtual ~PieceSink() = default;
  virtual void piece(std::string_view word) = 0;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  PreTokenizer();  // no pre-tokenizer: the whole text is one word
  explicit PreTokenizer(const nlohmann::json& spec);  // throws Error naming unsupported types
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // True when a ByteLevel step maps bytes to the GPT-2 alphabet (BPE then works on raw bytes).
  bool byte_level() const { return byte_level_; }

  // text must be valid UTF-8. Empty pieces are never emitted.
  void run(std::string_view text, PieceSink& sink) const;

 private:
  struct Step {
    enum Kind { kSplit, kByteLevel } kind = kSplit;
    std::unique_ptr<Regex> regex;  // kSplit with a regex; kByteLevel with use_regex
    std::string literal;           // kSplit with a String pattern
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // kByteLevel
  };
  std::vector<Step> steps_;
  bool byte_level_ = false;

  void add(const nlohmann::json& spec, const std::string& path);  // path: where spec is, for messages
  void run_from(size_t step, std::string_view s, PieceSink& sink) const;
  void split(const Step& st, size_t step, std::string_view s, PieceSink& sink) const;
};

}  // namespace dsinfer::tokenizer
