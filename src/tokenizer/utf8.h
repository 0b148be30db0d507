// UTF-8 helpers shared by the tokenizer layer: validation, lossy repair with U+FFFD (the same
// "maximal subpart" policy as Rust's String::from_utf8_lossy, which Hugging Face's tokenizer uses
// when it turns decoded bytes back into text), and the length of a complete prefix so a streaming
// decoder can hold back a character whose bytes have not all arrived.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsinfer::tokenizer {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not a
// complete valid sequence (truncated or invalid).
size_t utf8_sequence_length(std::string_view s, size_t i);

bool is_valid_utf8(std::string_view s);

// Appends s to out, replacing each maximal invalid subpart with U+FFFD.
void append_utf8_lossy(std::string_view s, std::string& out);
std::string utf8_lossy(std::string_view s);

// Length of the longest prefix of s after which what remains is either empty or the start of a
// UTF-8 sequence that more bytes could still complete. Everything before that point can be
// emitted now (invalid bytes in it become U+FFFD); the rest must wait.
size_t utf8_emittable_prefix(std::string_view s);

void append_code_point(uint32_t cp, std::string& out);

// Decodes the code point at s[i] (s must be valid UTF-8); advances i.
inline uint32_t next_code_point(std::string_view s, size_t& i) {
  auto b = [&](size_t k) { return uint32_t(uint8_t(s[i + k])); };
  uint32_t c = b(0);
  if (c < 0x80) { i += 1; return c; }
  if (c < 0xE0) { uint32_t r = ((c & 0x1F) << 6) | (b(1) & 0x3F); i += 2; return r; }
  if (c < 0xF0) { uint32_t r = ((c & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F); i += 3; return r; }
  uint32_t r = ((c & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  i += 4;
  return r;
}

// Byte length of the character whose lead byte is c (1 for continuation/invalid bytes).
inline size_t utf8_lead_length(uint8_t c) {
  return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

}  // namespace dsinfer::tokenizer
