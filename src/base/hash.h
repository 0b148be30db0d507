// The splitmix64 finalizer: a cheap, well-mixed 64-bit bijection. Prefix-cache block keys
// (cache/block_hash.h), the per-request sampling streams (kernels/sampling.h) and the
// tokenizer's id-pair table (tokenizer/flat_map.h) build on it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dsinfer {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Folds arbitrary bytes into a running hash (model fingerprints: config text, file heads, dtype).
inline uint64_t fingerprint_bytes(uint64_t seed, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t h = mix64(seed ^ 0xa0761d6478bd642full);
  for (size_t i = 0; i < n; ++i) h = mix64(h ^ (uint64_t(p[i]) + 0x9e3779b97f4a7c15ull * (i + 1)));
  return h;
}

}  // namespace dsinfer
