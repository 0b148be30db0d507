// The decoder of tokenizer.json: token strings -> text. Supported: ByteLevel (each token whose
// characters are all in the byte-level alphabet becomes those bytes, any other token is taken as
// it is, and the joined bytes are repaired to UTF-8 with U+FFFD), Sequence, ByteFallback, Fuse,
// Replace and Strip; with no decoder, tokens are joined with spaces, as Hugging Face does.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dsinfer::tokenizer {

class Decoder {
 public:
  Decoder();  // no decoder
  explicit Decoder(const nlohmann::json& spec);  // throws Error naming unsupported types
  ~Decoder();
  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;

  // True when the decoder is exactly ByteLevel: decoding is then a concatenation of per-token
  // bytes, which the streaming detokenizer relies on.
  bool is_byte_level() const { return steps_.size() == 1 && steps_[0].kind == Step::kByteLevel; }

  std::string decode(std::vector<std::string> tokens) const;

 private:
  struct Step {
    enum Kind { kByteLevel, kByteFallback, kFuse, kReplace, kStrip } kind;
    std::string pattern, content;  // kReplace; kStrip uses content as the character
    size_t start = 0, stop = 0;    // kStrip
  };
  std::vector<Step> steps_;
  bool none_ = true;

  void add(const nlohmann::json& spec);
};

}  // namespace dsinfer::tokenizer
