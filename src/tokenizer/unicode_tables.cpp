#include "tokenizer/unicode_tables.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <cstdint>
#include <vector>

#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

namespace {

#include "tokenizer/unicode_tables_data.inc"

struct PropertyDelta {
  const char* property;
  uint32_t first, last;
  bool added;
};

#include "tokenizer/unicode_delta_data.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

// Binary search over a table of rows of `width` values whose first value is the key.
template <size_t N>
const uint32_t* find_row(const uint32_t (&table)[N], size_t width, uint32_t key) {
  size_t lo = 0, hi = N / width;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    uint32_t k = table[mid * width];
    if (k == key) return &table[mid * width];
    if (k < key) lo = mid + 1;
    else hi = mid;
  }
  return nullptr;
}

uint32_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const uint32_t* row = find_row(kCombiningClass, 2, cp);
  return row ? row[1] : 0;
}

void decompose(uint32_t cp, bool compat, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xA0) {
    const uint32_t* row = compat ? find_row(kCompatibilityDecomposition, 3, cp) : nullptr;
    if (!row) row = find_row(kCanonicalDecomposition, 3, cp);
    if (row) {
      out.insert(out.end(), kMappingValues + row[1], kMappingValues + row[1] + row[2]);
      return;
    }
  }
  out.push_back(cp);
}

uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  // Rows are sorted by (first, second).
  size_t lo = 0, hi = std::size(kComposition) / 3;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const uint32_t* r = &kComposition[mid * 3];
    if (r[0] == a && r[1] == b) return r[2];
    if (r[0] < a || (r[0] == a && r[1] < b)) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

}  // namespace

std::string unicode_normalize(std::string_view s, bool compat, bool compose) {
  // Pure ASCII is already in every normalization form.
  bool ascii = true;
  for (char c : s) ascii &= uint8_t(c) < 0x80;
  if (ascii) return std::string(s);

  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(next_code_point(s, i), compat, cps);

  // Canonical ordering: a stable sort of every run of non-starters by combining class.
  std::vector<uint32_t> cls(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) cls[i] = combining_class(cps[i]);
  for (size_t i = 0; i < cps.size();) {
    if (cls[i] == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && cls[j] != 0) ++j;
    for (size_t a = i + 1; a < j; ++a)
      for (size_t b = a; b > i && cls[b - 1] > cls[b]; --b) std::swap(cps[b - 1], cps[b]), std::swap(cls[b - 1], cls[b]);
    i = j;
  }

  if (compose) {
    std::vector<uint32_t> out;
    out.reserve(cps.size());
    size_t starter = SIZE_MAX;
    uint32_t last_cls = 0;
    for (size_t i = 0; i < cps.size(); ++i) {
      uint32_t c = cps[i], cc = cls[i];
      if (starter != SIZE_MAX) {
        // c is not blocked from the starter when it follows it directly or every character in
        // between has a lower, non-zero combining class.
        bool adjacent = starter + 1 == out.size();
        if (adjacent || (last_cls != 0 && last_cls < cc)) {
          if (uint32_t composite = compose_pair(out[starter], c)) {
            out[starter] = composite;
            continue;
          }
        }
      }
      if (cc == 0) starter = out.size();
      out.push_back(c);
      last_cls = cc;
    }
    cps.swap(out);
  }
  std::string result;
  result.reserve(s.size());
  for (uint32_t cp : cps) append_code_point(cp, result);
  return result;
}

std::string unicode_lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint8_t c = uint8_t(s[i]);
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? char(c + 32) : char(c));
      ++i;
      continue;
    }
    uint32_t cp = next_code_point(s, i);
    const uint32_t(*row)[4] = std::lower_bound(std::begin(kLowercase16), std::end(kLowercase16), cp,
                                                 [](const uint32_t(&r)[4], uint32_t v) { return r[0] < v; });
    if (row == std::end(kLowercase16) || (*row)[0] != cp) {
      append_code_point(cp, out);
      continue;
    }
    for (int k = 1; k < 4 && (*row)[k]; ++k) append_code_point((*row)[k], out);
  }
  return out;
}

std::string unicode_property_additions(std::string_view property) {
  // One-letter categories stand for all their two-letter ones.
  std::string out;
  for (const PropertyDelta& d : kPropertyDelta) {
    std::string_view p = d.property;
    bool match = p == property || (property.size() == 1 && p.size() == 2 && p[0] == property[0]);
    // Characters that left a category since Unicode 14 (one Ahom mark moved from Mn to Mc) are
    // too rare to be worth a lookaround; they are not removed.
    if (!match || !d.added) continue;
    char buf[48];
    if (d.first == d.last) std::snprintf(buf, sizeof(buf), "\\x{%X}", d.first);
    else std::snprintf(buf, sizeof(buf), "\\x{%X}-\\x{%X}", d.first, d.last);
    out += buf;
  }
  return out;
}

}  // namespace dsinfer::tokenizer
