// Chained block hashes for the prefix index. A full block's key is
//   hash(parent block's key, the block's token ids, the model fingerprint)
// so a key names the whole prefix up to and including that block, and two models (or two cache
// dtypes) never share an entry. 64 bits make collisions rare, not impossible: every hit is
// re-checked against the block's stored token ids before its KV is reused.
#pragma once

#include <cstdint>
#include <vector>

#include "base/hash.h"

namespace dsinfer::cache {

// The key of a block whose parent has key `parent` (0 for the first block).
inline uint64_t block_hash(uint64_t parent, const int32_t* tokens, int64_t n, uint64_t fingerprint) {
  uint64_t h = mix64(parent ^ 0x6a09e667f3bcc909ull) ^ mix64(fingerprint + 0x3c6ef372fe94f82bull);
  for (int64_t i = 0; i < n; ++i) h = mix64(h + 0x9e3779b97f4a7c15ull + uint64_t(uint32_t(tokens[i])));
  h = mix64(h ^ uint64_t(n));
  return h == 0 ? 1 : h;  // 0 is reserved for "no parent"
}

// The keys of the first full blocks of tokens[0, n) (at most max_blocks), each chained on the one
// before: what the prefix index would key them by.
inline std::vector<uint64_t> prefix_keys(const int32_t* tokens, int64_t n, int64_t block_size, uint64_t fingerprint,
                                         int64_t max_blocks) {
  std::vector<uint64_t> keys;
  uint64_t parent = 0;
  for (int64_t b = 0; (b + 1) * block_size <= n && b < max_blocks; ++b) {
    parent = block_hash(parent, tokens + b * block_size, block_size, fingerprint);
    keys.push_back(parent);
  }
  return keys;
}

}  // namespace dsinfer::cache
