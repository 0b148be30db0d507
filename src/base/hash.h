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

// A checksum of bulk data (KV blocks on disk and in transfer, expert weights moved between
// ranks); not for short keys (fingerprint_bytes is). Eight independent 64-bit lanes each add a
// data word and the product of its two 32-bit halves after a key that differs per lane and per
// stripe (so words are tied to their position): 32x32->64 products vectorise (pmuludq in SSE2,
// AVX2 and AVX-512), so this runs at memory speed, several times a serial multiply chain. Every
// 16 stripes (1 KB) the lanes are scrambled, so the order of the segments matters too; the lanes,
// the tail bytes and the length are folded at the end.
inline uint64_t checksum_bytes(uint64_t seed, const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  constexpr int kLanes = 8;
  constexpr size_t kStripe = 8 * kLanes, kSegment = 16;
  uint64_t acc[kLanes];
  for (int k = 0; k < kLanes; ++k) acc[k] = mix64(seed + uint64_t(k) + 1);
  size_t i = 0;
  while (i + kStripe <= n) {
    const size_t stripes = (n - i) / kStripe < kSegment ? (n - i) / kStripe : kSegment;
    for (size_t s = 0; s < stripes; ++s, i += kStripe)
      for (int k = 0; k < kLanes; ++k) {
        uint64_t w;
        std::memcpy(&w, p + i + 8 * size_t(k), 8);
        const uint64_t x = w ^ (0x9e3779b97f4a7c15ull * (s * kLanes + uint64_t(k) + 1));
        acc[k] += w + (x & 0xffffffffu) * (x >> 32);
      }
    for (int k = 0; k < kLanes; ++k) acc[k] = (acc[k] ^ (acc[k] >> 47)) * 0x9e3779b1u;
  }
  uint64_t h = mix64(seed ^ uint64_t(n));
  for (int k = 0; k < kLanes; ++k) h = mix64(h ^ acc[k]);
  for (; i < n; ++i) h = mix64(h ^ (uint64_t(p[i]) + 0x9e3779b97f4a7c15ull * (i + 1)));
  return h;
}

}  // namespace dsinfer
