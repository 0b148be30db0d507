#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

namespace {

struct Tables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 512> from_cp{};  // code point (< 512) -> byte, -1 when not in the alphabet
  Tables() {
    from_cp.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the rest take code points from 256 upward
    // in byte order.
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? uint32_t(b) : next++;
      from_cp[to_cp[b]] = int16_t(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  const Tables& t = tables();
  if (!is_valid_utf8(token)) return std::nullopt;
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    uint32_t cp = next_code_point(token, i);
    if (cp >= t.from_cp.size() || t.from_cp[cp] < 0) return std::nullopt;
    out.push_back(char(t.from_cp[cp]));
  }
  return out;
}

}  // namespace dsinfer::tokenizer
