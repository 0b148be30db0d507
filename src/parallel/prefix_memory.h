// PrefixMemory: a bounded map from prefix keys (non-zero 64-bit hashes of KV blocks) to a small
// non-negative value, forgetting the least recently remembered key first. The balancers use it
// to remember where a prompt's prefix was sent (dp_balancer.h: key -> rank; pd_balancer.h: one
// memory per instance of the block keys sent there), so a later prompt sharing that prefix can
// go where its KV blocks may still be cached.
//
// The rule: a key is forgotten once capacity() remember() calls (of non-zero keys) have followed
// its last remember(), so at most capacity() keys are held. Only remember() counts: find() is a
// look-up and does not refresh a key, since asking where a prefix lives sends nothing anywhere.
// Everything is sized in the constructor: remember() and find() never allocate.
#pragma once

#include <cstdint>
#include <vector>

namespace dsinfer::parallel {

class PrefixMemory {
 public:
  // Throws Error unless 0 < capacity <= 2^29.
  explicit PrefixMemory(int capacity);

  // The value last remembered for key, or -1 when key is 0 or not (any longer) remembered.
  int find(uint64_t key) const;
  bool contains(uint64_t key) const { return find(key) >= 0; }
  // Remembers key -> value (key != 0, value >= 0; a 0 key is ignored: it means "no prefix").
  void remember(uint64_t key, int value);
  // Forgets every key (O(capacity)).
  void clear();

  int capacity() const { return int(ring_.size()); }
  int size() const { return size_; }

 private:
  // A ring of the last capacity() (key, value) entries, in remember order, and an open-addressing
  // index (linear probing, at most half full) from key to ring slot.
  struct Entry {
    uint64_t key = 0;  // 0: empty (0 is "no prefix" and never stored)
    int value = -1;
  };
  int home_position(uint64_t key) const;
  int next_position(int pos) const { return (pos + 1) & mask_; }
  int find_position(uint64_t key) const;  // index position holding key, or -1
  void forget(int hole);                  // removes the entry at index position `hole`

  std::vector<Entry> ring_;
  int ring_next_ = 0;  // ring slot the next key goes to (the oldest entry)
  int size_ = 0;
  std::vector<int32_t> index_;  // ring slot per position, -1 when free
  int mask_ = 0;                // index_.size() - 1 (a power of two)
};

}  // namespace dsinfer::parallel
