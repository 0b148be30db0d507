#include "parallel/prefix_memory.h"

#include <algorithm>

#include "base/error.h"

namespace dsinfer::parallel {

PrefixMemory::PrefixMemory(int capacity) {
  check(capacity > 0 && capacity <= (1 << 29), "prefix memory: capacity must be in 1..2^29, got ", capacity);
  // At least twice the ring's positions, so linear probing stays short (at most half full).
  int index_size = 1;
  while (index_size < 2 * capacity) index_size *= 2;
  ring_.assign(size_t(capacity), Entry{});
  index_.assign(size_t(index_size), -1);
  mask_ = index_size - 1;
}

// Keys are hashes already, but a caller's keys may be structured (small counters in tests,
// truncated hashes); the splitmix64 finaliser spreads any key over the index.
int PrefixMemory::home_position(uint64_t key) const {
  key ^= key >> 30;
  key *= 0xbf58476d1ce4e5b9ULL;
  key ^= key >> 27;
  key *= 0x94d049bb133111ebULL;
  key ^= key >> 31;
  return int(key & uint64_t(mask_));
}

int PrefixMemory::find_position(uint64_t key) const {
  for (int pos = home_position(key); index_[size_t(pos)] >= 0; pos = next_position(pos)) {
    if (ring_[size_t(index_[size_t(pos)])].key == key) return pos;
  }
  return -1;
}

int PrefixMemory::find(uint64_t key) const {
  if (key == 0) return -1;
  const int pos = find_position(key);
  return pos < 0 ? -1 : ring_[size_t(index_[size_t(pos)])].value;
}

void PrefixMemory::remember(uint64_t key, int value) {
  if (key == 0) return;
  // A key remembered again moves to the newest ring slot (least recently remembered goes first).
  if (const int pos = find_position(key); pos >= 0) forget(pos);
  Entry& slot = ring_[size_t(ring_next_)];
  if (slot.key != 0) forget(find_position(slot.key));  // the oldest key leaves
  slot = Entry{key, value};
  int pos = home_position(key);
  while (index_[size_t(pos)] >= 0) pos = next_position(pos);
  index_[size_t(pos)] = ring_next_;
  ++size_;
  ring_next_ = (ring_next_ + 1) % capacity();
}

void PrefixMemory::clear() {
  std::fill(ring_.begin(), ring_.end(), Entry{});
  std::fill(index_.begin(), index_.end(), -1);
  ring_next_ = 0;
  size_ = 0;
}

// Removes the entry at index position `hole` and its ring slot. Linear probing has no tombstones
// here: each later entry of the probe run moves back into the hole unless its home position lies
// cyclically in (hole, pos], where moving it would put it before its home and make it unfindable.
void PrefixMemory::forget(int hole) {
  ring_[size_t(index_[size_t(hole)])] = Entry{};
  --size_;
  for (int pos = next_position(hole); index_[size_t(pos)] >= 0; pos = next_position(pos)) {
    const int home = home_position(ring_[size_t(index_[size_t(pos)])].key);
    const bool stays = hole <= pos ? (hole < home && home <= pos) : (hole < home || home <= pos);
    if (stays) continue;
    index_[size_t(hole)] = index_[size_t(pos)];
    hole = pos;
  }
  index_[size_t(hole)] = -1;
}

}  // namespace dsinfer::parallel
