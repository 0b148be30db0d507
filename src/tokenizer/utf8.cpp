#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

namespace {

// How many bytes of s starting at i form a valid prefix of some UTF-8 sequence (Unicode Table
// 3-7 well-formed byte sequences), and how long that sequence would be in total.
struct Prefix {
  size_t valid;  // bytes that belong to a well-formed sequence (may be < need when truncated)
  size_t need;   // bytes the full sequence has; 0 when s[i] cannot start a sequence
};

Prefix scan(std::string_view s, size_t i) {
  uint8_t c = uint8_t(s[i]);
  if (c < 0x80) return {1, 1};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return {0, 0};
  }
  size_t k = 1;
  for (; k < need && i + k < s.size(); ++k) {
    uint8_t b = uint8_t(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
  }
  return {k, need};
}

}  // namespace

size_t utf8_sequence_length(std::string_view s, size_t i) {
  Prefix p = scan(s, i);
  return p.need != 0 && p.valid == p.need ? p.need : 0;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII runs are the common case: skip eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= s.size()) break;
    size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_utf8_lossy(std::string_view s, std::string& out) {
  size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
  while (i < s.size()) {
    Prefix p = scan(s, i);
    if (p.need != 0 && p.valid == p.need) {
      i += p.need;
      continue;
    }
    out.append(s.data() + run, i - run);
    out.append("\xEF\xBF\xBD");
    i += p.valid == 0 ? 1 : p.valid;  // a maximal subpart is replaced by one U+FFFD
    run = i;
  }
  out.append(s.data() + run, s.size() - run);
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_utf8_lossy(s, out);
  return out;
}

size_t utf8_emittable_prefix(std::string_view s) {
  // Only the last three bytes can be an incomplete sequence.
  size_t start = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = start; i < s.size(); ++i) {
    uint8_t c = uint8_t(s[i]);
    if (c < 0xC2 || c > 0xF4) continue;  // not a lead byte
    Prefix p = scan(s, i);
    if (i + p.valid == s.size() && p.valid < p.need) return i;
  }
  return s.size();
}

void append_code_point(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

}  // namespace dsinfer::tokenizer
