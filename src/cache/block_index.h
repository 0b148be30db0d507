// The prefix index: chained block key -> block id, in one flat open-addressing table sized at
// start for every block of the pool, so indexing a block that just filled, or dropping an evicted
// one, allocates nothing (a std::unordered_map allocated a node per indexed block: one
// allocation every 64 decoded tokens of every sequence). Linear probing with backward-shift
// deletion keeps lookups short without tombstones. Keys are never 0 (block_hash reserves it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dsinfer::cache {

class BlockIndex {
 public:
  explicit BlockIndex(int64_t max_entries) {
    size_t cap = 16;
    while (cap < size_t(max_entries) * 2) cap <<= 1;  // at most half full
    keys_.assign(cap, 0);
    values_.assign(cap, -1);
    mask_ = cap - 1;
  }

  // The block holding `key`, or -1.
  int32_t find(uint64_t key) const {
    for (size_t i = key & mask_;; i = (i + 1) & mask_) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == 0) return -1;
    }
  }
  bool contains(uint64_t key) const { return find(key) >= 0; }

  // Adds key -> block; the caller has checked it is absent (and the pool bounds the count).
  void insert(uint64_t key, int32_t block) {
    size_t i = key & mask_;
    while (keys_[i] != 0) i = (i + 1) & mask_;
    keys_[i] = key;
    values_[i] = block;
  }

  // Removes `key` if it maps to `block`.
  void erase(uint64_t key, int32_t block) {
    size_t i = key & mask_;
    while (keys_[i] != key) {
      if (keys_[i] == 0) return;
      i = (i + 1) & mask_;
    }
    if (values_[i] != block) return;
    // Backward shift: move later entries of the probe run into the hole when their home slot
    // does not lie (cyclically) between the hole and their position.
    for (size_t j = (i + 1) & mask_; keys_[j] != 0; j = (j + 1) & mask_) {
      size_t home = keys_[j] & mask_;
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      keys_[i] = keys_[j];
      values_[i] = values_[j];
      i = j;
    }
    keys_[i] = 0;
    values_[i] = -1;
  }

 private:
  std::vector<uint64_t> keys_;
  std::vector<int32_t> values_;
  size_t mask_ = 0;
};

}  // namespace dsinfer::cache
