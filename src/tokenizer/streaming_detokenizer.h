// Turns a stream of generated token ids into text as soon as it is complete UTF-8. A byte-level
// token can end in the middle of a character (an emoji is often two or three tokens), so bytes
// that may still become a character are held back until the next token or flush(). Invalid
// bytes become U+FFFD exactly where Tokenizer::decode puts them: for any id sequence, the
// concatenation of every push() and the final flush() equals decode() of the whole sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace dsinfer::tokenizer {

class StreamingDetokenizer {
 public:
  // The tokenizer must outlive the detokenizer.
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false);

  // Newly complete text (possibly empty). Throws Error for an id outside the vocabulary, leaving
  // the state as it was.
  std::string push(int32_t id);
  // The same, appended to `out`: with a byte-level decoder (DeepSeek's) this allocates nothing
  // once the buffers have grown, which the engine's per-token path relies on.
  void push(int32_t id, std::string& out);

  // Whatever is held back, with an incomplete character replaced by U+FFFD; the detokenizer is
  // then empty and can be reused.
  std::string flush();
  void flush(std::string& out);

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  static constexpr size_t kHeldBytes = 256;
  std::string pending_;       // byte-level decoders: bytes not yet emitted
  std::vector<int32_t> ids_;  // other decoders: ids since the last emitted boundary
  size_t prefix_ = 0, read_ = 0;
};

}  // namespace dsinfer::tokenizer
