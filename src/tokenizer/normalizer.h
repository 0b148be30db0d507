// The normalizer of tokenizer.json, applied to the text between added tokens before
// pre-tokenization. Supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Replace (String or
// Regex pattern), Prepend, Strip. Offsets are not tracked: dsinfer needs ids, not alignments.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dsinfer::tokenizer {

class Regex;

class Normalizer {
 public:
  Normalizer();  // the identity
  explicit Normalizer(const nlohmann::json& spec);  // throws Error naming unsupported types
  ~Normalizer();
  Normalizer(Normalizer&&) noexcept;
  Normalizer& operator=(Normalizer&&) noexcept;

  // False when normalization cannot change any text (no steps, or an empty Sequence), so the
  // caller can skip the copy.
  bool active() const { return !steps_.empty(); }

  // s must be valid UTF-8; the result is valid UTF-8.
  void normalize(std::string& s) const;

 private:
  struct Step {
    enum Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kReplace, kPrepend, kStrip } kind;
    std::unique_ptr<Regex> regex;  // kReplace with a Regex pattern
    std::string pattern;           // kReplace with a String pattern
    std::string content;           // kReplace replacement, kPrepend prefix
    bool left = false, right = false;  // kStrip
  };
  std::vector<Step> steps_;

  void add(const nlohmann::json& spec);
};

}  // namespace dsinfer::tokenizer
