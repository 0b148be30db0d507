// Hexadecimal text for the ids and addresses that travel in HTTP headers, JSON and file names:
// byte strings (UCX worker addresses) and 64-bit keys (transfer ids, prefix keys, fingerprints).
// Lowercase out; either case in; anything else is an Error naming what was being read.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace dsinfer {

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline std::string to_hex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

// Throws Error on empty, odd-length or non-hex text; `what` names it in the message.
inline std::vector<uint8_t> bytes_from_hex(std::string_view hex, const char* what) {
  check(!hex.empty(), what, ": empty");
  check(hex.size() % 2 == 0, what, ": odd number of hex digits (", hex.size(), ")");
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    check(hi >= 0 && lo >= 0, what, ": '", hi < 0 ? hex[2 * i] : hex[2 * i + 1], "' is not a hex digit");
    out[i] = uint8_t(hi << 4 | lo);
  }
  return out;
}

// 16 digits, zero-padded.
inline std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// 1 to 16 hex digits; false (out untouched) otherwise.
inline bool parse_hex64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    const int d = hex_digit(c);
    if (d < 0) return false;
    v = v << 4 | uint64_t(d);
  }
  out = v;
  return true;
}

}  // namespace dsinfer
