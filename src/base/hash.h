// The splitmix64 finalizer: a cheap, well-mixed 64-bit bijection. Prefix-cache block keys
// (cache/block_hash.h), the per-request sampling streams (kernels/sampling.h) and the
// tokenizer's id-pair table (tokenizer/flat_map.h) build on it.
#pragma once

#include <cstdint>

namespace dsinfer {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace dsinfer
