#include "cache/block_manager.h"

#include <algorithm>

#include "base/error.h"
#include "cache/block_hash.h"

namespace dsinfer::cache {

BlockManager::BlockManager(KvPool& pool, uint64_t fingerprint, bool prefix_caching)
    : pool_(pool), fingerprint_(fingerprint), prefix_caching_(prefix_caching), blocks_(size_t(pool.num_blocks())) {
  // The manager owns every block of the pool; the pool's own free list is not used from here on.
  std::vector<int32_t> all;
  check(pool_.allocate(pool_.free_blocks(), all), "KV pool is already in use");
  free_.assign(all.rbegin(), all.rend());  // pop_back hands out low ids first
}

int64_t BlockManager::match_prefix(const int32_t* tokens, int64_t n, int64_t keep, std::vector<int32_t>& table,
                                   std::vector<uint64_t>& hashes) {
  const int64_t bs = block_size();
  if (!prefix_caching_) return 0;
  int64_t covered = 0;
  uint64_t parent = hashes.empty() ? 0 : hashes.back();
  for (int64_t start = int64_t(hashes.size()) * bs; start + bs <= n - keep; start += bs) {
    uint64_t h = block_hash(parent, tokens + start, bs, fingerprint_);
    auto it = index_.find(h);
    if (it == index_.end()) break;
    Block& b = blocks_[size_t(it->second)];
    // A hash collision must never serve wrong KV.
    if (!std::equal(b.tokens.begin(), b.tokens.end(), tokens + start)) break;
    if (b.ref == 0 && b.in_lru) {
      lru_.erase(b.lru);
      b.in_lru = false;
    }
    ++b.ref;
    table.push_back(it->second);
    hashes.push_back(h);
    parent = h;
    covered += bs;
  }
  // The next block is full and cached too, but its last `keep` tokens must be recomputed for
  // their logits. Recomputing into the shared block would rewrite rows other sequences read, so
  // copy it into a private block (copy-on-write) and recompute only those tokens, rather than
  // the whole block.
  const int64_t start = int64_t(hashes.size()) * bs;
  if (keep > 0 && keep < bs && start + bs == n) {
    uint64_t h = block_hash(parent, tokens + start, bs, fingerprint_);
    auto it = index_.find(h);
    if (it != index_.end() && available() >= 1) {
      const int32_t src = it->second;
      Block& b = blocks_[size_t(src)];
      if (std::equal(b.tokens.begin(), b.tokens.end(), tokens + start)) {
        // Hold the source so that taking a fresh block cannot evict it.
        if (b.ref == 0 && b.in_lru) {
          lru_.erase(b.lru);
          b.in_lru = false;
        }
        ++b.ref;
        if (available() >= 1) {
          int32_t id = take_one();
          blocks_[size_t(id)].ref = 1;
          pool_.copy_block(src, id, bs - keep);
          table.push_back(id);
          covered += bs - keep;
        }
        std::vector<int32_t> held{src};
        release(held);
      }
    }
  }
  return covered;
}

int32_t BlockManager::take_one() {
  if (!free_.empty()) {
    int32_t id = free_.back();
    free_.pop_back();
    return id;
  }
  int32_t id = lru_.front();  // evict the least recently released cached block
  lru_.pop_front();
  blocks_[size_t(id)].in_lru = false;
  unindex(id);
  ++evictions_;
  return id;
}

void BlockManager::unindex(int32_t id) {
  Block& b = blocks_[size_t(id)];
  if (b.hash != 0) {
    auto it = index_.find(b.hash);
    if (it != index_.end() && it->second == id) index_.erase(it);
  }
  b.hash = 0;
  b.tokens.clear();
}

bool BlockManager::allocate(int64_t count, std::vector<int32_t>& table) {
  if (count > available()) return false;
  for (int64_t i = 0; i < count; ++i) {
    int32_t id = take_one();
    blocks_[size_t(id)].ref = 1;
    table.push_back(id);
  }
  return true;
}

void BlockManager::release(std::vector<int32_t>& table) {
  // Release the tail first so that, among one sequence's blocks, the prefix stays cached longest.
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    Block& b = blocks_[size_t(*it)];
    check(b.ref > 0, "KV block ", *it, " released more often than it was taken");
    if (--b.ref > 0) continue;
    if (b.hash != 0) {
      b.lru = lru_.insert(lru_.end(), *it);
      b.in_lru = true;
    } else {
      free_.push_back(*it);
    }
  }
  table.clear();
}

bool BlockManager::fork(const std::vector<int32_t>& src, int64_t tokens, std::vector<int32_t>& table) {
  const int64_t bs = block_size();
  const int64_t full = tokens / bs, tail = tokens % bs;
  check(blocks_for(tokens) <= int64_t(src.size()), "fork of ", tokens, " tokens from a table of ", src.size(), " blocks");
  if (tail > 0 && available() < 1) return false;
  for (int64_t i = 0; i < full; ++i) {
    ++blocks_[size_t(src[size_t(i)])].ref;
    table.push_back(src[size_t(i)]);
  }
  if (tail > 0) {
    int32_t id = take_one();
    blocks_[size_t(id)].ref = 1;
    pool_.copy_block(src[size_t(full)], id, tail);
    table.push_back(id);
  }
  return true;
}

void BlockManager::commit(const int32_t* tokens, int64_t computed, const std::vector<int32_t>& table,
                          std::vector<uint64_t>& hashes) {
  if (!prefix_caching_) return;
  const int64_t bs = block_size();
  uint64_t parent = hashes.empty() ? 0 : hashes.back();
  for (int64_t i = int64_t(hashes.size()); (i + 1) * bs <= computed && i < int64_t(table.size()); ++i) {
    const int32_t* t = tokens + i * bs;
    uint64_t h = block_hash(parent, t, bs, fingerprint_);
    hashes.push_back(h);
    parent = h;
    Block& b = blocks_[size_t(table[size_t(i)])];
    if (b.hash != 0) continue;  // already indexed (a shared prefix block)
    // Another sequence may have computed the same block meanwhile; keep the first copy indexed
    // and let this one be freed when its sequence ends.
    if (index_.count(h)) continue;
    b.hash = h;
    b.tokens.assign(t, t + bs);
    index_.emplace(h, table[size_t(i)]);
  }
}

BlockStats BlockManager::stats() const {
  BlockStats s;
  s.total = int64_t(blocks_.size());
  s.free = int64_t(free_.size());
  s.cached = int64_t(lru_.size());
  s.used = s.total - s.free - s.cached;
  s.evictions = evictions_;
  return s;
}

}  // namespace dsinfer::cache
