// The splitmix64 finalizer: a cheap, well-mixed 64-bit bijection. Prefix-cache block keys
// (cache/block_hash.h), the per-request sampling streams (kernels/sampling.h) and the
// tokenizer's id-pair table (tokenizer/flat_map.h) build on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

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

// A checksum of bulk data (expert weights moved between ranks), eight bytes at a time in four
// independent lanes so it runs near memory speed; not for short keys (fingerprint_bytes is).
inline uint64_t checksum_bytes(uint64_t seed, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t lane[4] = {mix64(seed ^ 1), mix64(seed ^ 2), mix64(seed ^ 3), mix64(seed ^ 4)};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      lane[k] = (lane[k] ^ w) * 0x9e3779b97f4a7c15ull;
      lane[k] ^= lane[k] >> 29;
    }
  uint64_t h = mix64(lane[0] ^ mix64(lane[1] ^ mix64(lane[2] ^ mix64(lane[3] ^ n))));
  for (; i < n; ++i) h = mix64(h ^ (uint64_t(p[i]) + 0x9e3779b97f4a7c15ull * (i + 1)));
  return h;
}

}  // namespace dsinfer
