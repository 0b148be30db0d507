// Open-addressing hash tables for the encoder's hot path: strings -> ids (the vocabulary, the
// per-thread word cache) and id pairs -> merges. They hold a few hundred thousand entries in
// flat arrays, so a lookup costs one hash and usually one cache line, far less than
// std::unordered_map's node chasing.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/hash.h"

namespace dsinfer::tokenizer {

// 64-bit hash of a byte string: eight bytes at a time, multiply-xorshift mixing.
inline uint64_t hash_bytes(const char* p, size_t n) {
  const uint64_t k = 0x9E3779B97F4A7C15ull;
  uint64_t h = n * k + 0x632BE59BD9B4E019ull;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

// Immutable-after-build map from byte strings to int32 values.
class StringMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }
  // Returns false (and changes nothing) when the key is already present.
  bool insert(std::string_view key, int32_t value) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    uint64_t h = hash_bytes(key.data(), key.size());
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.value < 0) {
        s = Slot{uint32_t(h >> 32), uint32_t(arena_.size()), uint32_t(key.size()), value};
        arena_.append(key);
        ++count_;
        return true;
      }
      if (s.tag == uint32_t(h >> 32) && s.len == key.size() && !std::memcmp(arena_.data() + s.offset, key.data(), key.size()))
        return false;
    }
  }
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    uint64_t h = hash_bytes(key.data(), key.size());
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value < 0) return -1;
      if (s.tag == uint32_t(h >> 32) && s.len == key.size() && !std::memcmp(arena_.data() + s.offset, key.data(), key.size()))
        return s.value;
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint32_t tag = 0, offset = 0, len = 0;
    int32_t value = -1;
  };
  std::vector<Slot> slots_;
  std::string arena_;
  size_t mask_ = 0, count_ = 0;

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    std::string arena = std::move(arena_);
    reserve(old.empty() ? 8 : old.size());
    count_ = 0;
    arena_.clear();
    for (const Slot& s : old)
      if (s.value >= 0) insert(std::string_view(arena.data() + s.offset, s.len), s.value);
  }
};

// Map from an ordered pair of token ids to the merge that joins them.
class PairMap {
 public:
  struct Merge {
    int32_t rank = -1;
    int32_t new_id = -1;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }
  // A later merge of the same pair replaces the earlier one, as Hugging Face's HashMap collect does.
  void insert_or_assign(int32_t a, int32_t b, Merge m) {
    if ((count_ + 1) * 2 > slots_.size()) {
      std::vector<Slot> old = std::move(slots_);
      reserve(old.empty() ? 8 : old.size());
      count_ = 0;
      for (const Slot& s : old)
        if (s.merge.rank >= 0) insert_or_assign(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), s.merge);
    }
    uint64_t key = (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
    for (size_t i = mix64(key) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.merge.rank < 0) {
        s = Slot{key, m};
        ++count_;
        return;
      }
      if (s.key == key) {
        s.merge = m;
        return;
      }
    }
  }
  Merge find(int32_t a, int32_t b) const {
    uint64_t key = (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
    for (size_t i = mix64(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.merge.rank < 0 || s.key == key) return s.merge;
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t key = 0;
    Merge merge;
  };
  std::vector<Slot> slots_{16};
  size_t mask_ = 15, count_ = 0;
};

}  // namespace dsinfer::tokenizer
