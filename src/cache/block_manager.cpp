#include "cache/block_manager.h"

#include <algorithm>

#include "base/error.h"
#include "cache/block_hash.h"

namespace dsinfer::cache {

BlockManager::BlockManager(KvPool& pool, uint64_t fingerprint, bool prefix_caching)
    : pool_(pool), fingerprint_(fingerprint), prefix_caching_(prefix_caching), blocks_(size_t(pool.num_blocks())) {
  check(pool_.free_blocks() == pool_.num_blocks(), "KV pool is already in use");
}

void BlockManager::hold(Block& b) {
  if (b.ref == 0 && b.in_lru) {
    lru_.erase(b.lru);
    b.in_lru = false;
  }
  ++b.ref;
}

int64_t BlockManager::match_prefix(const int32_t* tokens, int64_t n, int64_t keep, std::vector<int32_t>& table) {
  const int64_t bs = block_size();
  if (!prefix_caching_) return 0;
  int64_t covered = 0;
  uint64_t parent = table.empty() ? 0 : key(table.back());
  for (int64_t start = int64_t(table.size()) * bs; start + bs <= n - keep; start += bs) {
    uint64_t h = block_hash(parent, tokens + start, bs, fingerprint_);
    auto it = index_.find(h);
    if (it == index_.end()) break;
    Block& b = blocks_[size_t(it->second)];
    // A hash collision must never serve wrong KV.
    if (!std::equal(b.tokens.begin(), b.tokens.end(), tokens + start)) break;
    hold(b);
    table.push_back(it->second);
    parent = h;
    covered += bs;
  }
  // The next block is full and cached too, but its last `keep` tokens must be recomputed for
  // their logits. Recomputing into the shared block would rewrite rows other sequences read, so
  // copy it into a private block (copy-on-write) and recompute only those tokens, rather than
  // the whole block.
  const int64_t start = int64_t(table.size()) * bs;
  if (keep > 0 && keep < bs && start + bs == n) {
    uint64_t h = block_hash(parent, tokens + start, bs, fingerprint_);
    auto it = index_.find(h);
    if (it != index_.end() && available() >= 1) {
      const int32_t src = it->second;
      Block& b = blocks_[size_t(src)];
      if (std::equal(b.tokens.begin(), b.tokens.end(), tokens + start)) {
        hold(b);  // so that taking a fresh block cannot evict it
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
  if (int32_t id = pool_.take(); id >= 0) return id;
  int32_t id = lru_.front();  // evict the least recently released cached block
  lru_.pop_front();
  blocks_[size_t(id)].in_lru = false;
  unindex(id);
  ++evictions_;
  return id;
}

void BlockManager::unindex(int32_t id) {
  Block& b = blocks_[size_t(id)];
  if (b.indexed) {
    auto it = index_.find(b.hash);
    if (it != index_.end() && it->second == id) index_.erase(it);
  }
  b.hash = 0;
  b.indexed = false;
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
    if (b.indexed) {
      b.lru = lru_.insert(lru_.end(), *it);
      b.in_lru = true;
    } else {
      b.hash = 0;  // a key that only chained: the block's next owner starts clean
      pool_.give_back(*it);
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

void BlockManager::commit(const int32_t* tokens, int64_t computed, const std::vector<int32_t>& table) {
  if (!prefix_caching_) return;
  const int64_t bs = block_size();
  const int64_t full = std::min<int64_t>(computed / bs, int64_t(table.size()));
  // The committed blocks lead the table: walk back from the last full block to the first one
  // without a key (a step fills at most a few, so this is short).
  int64_t i = full;
  while (i > 0 && key(table[size_t(i - 1)]) == 0) --i;
  for (; i < full; ++i) {
    const int32_t* t = tokens + i * bs;
    const uint64_t h = block_hash(i == 0 ? 0 : key(table[size_t(i - 1)]), t, bs, fingerprint_);
    Block& b = blocks_[size_t(table[size_t(i)])];
    b.hash = h;
    // Another sequence may have computed the same block meanwhile; keep the first copy indexed
    // and let this one only carry the chain until its sequence frees it.
    if (index_.count(h)) continue;
    b.indexed = true;
    b.tokens.assign(t, t + bs);
    index_.emplace(h, table[size_t(i)]);
  }
}

BlockStats BlockManager::stats() const {
  BlockStats s;
  s.total = int64_t(blocks_.size());
  s.free = pool_.free_blocks();
  s.cached = int64_t(lru_.size());
  s.used = s.total - s.free - s.cached;
  s.evictions = evictions_;
  return s;
}

}  // namespace dsinfer::cache
