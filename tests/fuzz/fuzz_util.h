// Helpers shared by the libFuzzer targets: splitting one input into several fields, and an
// invariant check that stops the run (libFuzzer saves the input as a crash artifact).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace dsinfer::fuzz {

// The input as text fields separated by NUL bytes ("a\0b\0c" -> a, b, c); at most `max` fields,
// the last one keeping any further NULs.
inline std::vector<std::string_view> split_fields(const uint8_t* data, size_t size, size_t max) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> out;
  while (out.size() + 1 < max) {
    size_t nul = s.find('\0');
    if (nul == std::string_view::npos) break;
    out.push_back(s.substr(0, nul));
    s.remove_prefix(nul + 1);
  }
  out.push_back(s);
  return out;
}

[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n", file, line, what);
  std::abort();
}

}  // namespace dsinfer::fuzz

#define FUZZ_CHECK(cond) ((cond) ? void(0) : ::dsinfer::fuzz::invariant_failed(#cond, __FILE__, __LINE__))
