#include "cache/block_manager.h"

#include <algorithm>

#include "base/error.h"
#include "cache/block_hash.h"

namespace dsinfer::cache {

BlockManager::BlockManager(KvPool& pool, uint64_t fingerprint, bool prefix_caching)
    : pool_(pool),
      fingerprint_(fingerprint),
      prefix_caching_(prefix_caching),
      blocks_(size_t(pool.num_blocks())),
      tokens_(prefix_caching ? size_t(pool.num_blocks() * pool.block_size()) : 0),
      index_(prefix_caching ? pool.num_blocks() : 0) {
  check(pool_.free_blocks() == pool_.num_blocks(), "KV pool is already in use");
  committed_.reserve(blocks_.size());
}

bool BlockManager::same_tokens(int32_t block, const int32_t* tokens) const {
  const int32_t* t = tokens_of(block);
  return std::equal(t, t + block_size(), tokens);
}

void BlockManager::lru_push_back(int32_t id) {
  Block& b = blocks_[size_t(id)];
  b.lru_prev = lru_tail_;
  b.lru_next = -1;
  if (lru_tail_ >= 0) blocks_[size_t(lru_tail_)].lru_next = id;
  else lru_head_ = id;
  lru_tail_ = id;
  b.in_lru = true;
  ++lru_size_;
}

void BlockManager::lru_remove(int32_t id) {
  Block& b = blocks_[size_t(id)];
  if (b.lru_prev >= 0) blocks_[size_t(b.lru_prev)].lru_next = b.lru_next;
  else lru_head_ = b.lru_next;
  if (b.lru_next >= 0) blocks_[size_t(b.lru_next)].lru_prev = b.lru_prev;
  else lru_tail_ = b.lru_prev;
  b.lru_prev = b.lru_next = -1;
  b.in_lru = false;
  --lru_size_;
}

void BlockManager::hold(Block& b) {
  if (b.ref == 0 && b.in_lru) lru_remove(int32_t(&b - blocks_.data()));
  ++b.ref;
}

int32_t BlockManager::cached_block(uint64_t key, const int32_t* tokens) const {
  const int32_t id = index_.find(key);
  // A hash collision must never serve wrong KV.
  return id >= 0 && same_tokens(id, tokens) ? id : -1;
}

int64_t BlockManager::cached_prefix_blocks(const uint64_t* keys, const int32_t* tokens, int64_t count) const {
  if (!prefix_caching_) return 0;
  int64_t b = 0;
  while (b < count && cached_block(keys[b], tokens + b * block_size()) >= 0) ++b;
  return b;
}

int64_t BlockManager::match_prefix(const int32_t* tokens, int64_t n, int64_t keep, std::vector<int32_t>& table) {
  const int64_t bs = block_size();
  if (!prefix_caching_) return 0;
  int64_t covered = 0;
  uint64_t parent = table.empty() ? 0 : key(table.back());
  for (int64_t start = int64_t(table.size()) * bs; start + bs <= n - keep; start += bs) {
    uint64_t h = block_hash(parent, tokens + start, bs, fingerprint_);
    const int32_t id = cached_block(h, tokens + start);
    if (id < 0) break;
    hold(blocks_[size_t(id)]);
    table.push_back(id);
    parent = h;
    covered += bs;
  }
  // The next block is full and cached too, but its last `keep` tokens must be recomputed for
  // their logits. Recomputing into the shared block would rewrite rows other sequences read, so
  // copy it into a private block (copy-on-write) and recompute only those tokens, rather than
  // the whole block.
  const int64_t start = int64_t(table.size()) * bs;
  if (keep > 0 && keep < bs && start + bs == n) {
    const int32_t src = cached_block(block_hash(parent, tokens + start, bs, fingerprint_), tokens + start);
    if (src >= 0 && available() >= 1) {
      hold(blocks_[size_t(src)]);  // so that taking a fresh block cannot evict it
      if (available() >= 1) {
        table.push_back(private_copy(src, bs - keep));
        covered += bs - keep;
      }
      release_one(src);
    }
  }
  // A row of the MTP module's layer depends on the token after it (engine/mtp_drafter.h), so the
  // last row of a hit that ends at a block boundary was written for whatever token followed it
  // there. Its token is recomputed in a private copy of the block (or, with no block to copy
  // into, the whole block is).
  if (lookahead_ && covered > 0 && covered % bs == 0) {
    const int32_t src = table.back();
    if (available() >= 1) {
      table.back() = private_copy(src, bs - 1);
      covered -= 1;
    } else {
      table.pop_back();
      covered -= bs;
    }
    release_one(src);
  }
  return covered;
}

int32_t BlockManager::private_copy(int32_t src, int64_t rows) {
  const int32_t id = take_one();
  blocks_[size_t(id)].ref = 1;
  pool_.copy_block(src, id, rows);
  return id;
}

int32_t BlockManager::take_one() {
  if (int32_t id = pool_.take(); id >= 0) return id;
  const int32_t id = lru_head_;  // evict the least recently released cached block
  lru_remove(id);
  unindex(id);
  ++evictions_;
  return id;
}

void BlockManager::unindex(int32_t id) {
  Block& b = blocks_[size_t(id)];
  if (b.indexed) index_.erase(b.hash, id);
  b.hash = 0;
  b.indexed = false;
}

bool BlockManager::insert_loaded(uint64_t key, const int32_t* tokens, FunctionRef<void(int32_t block)> fill) {
  check(prefix_caching_, "the disk tier needs the prefix cache");
  if (index_.contains(key)) return true;
  if (available() < 1) return false;
  const int32_t id = take_one();
  Block& b = blocks_[size_t(id)];
  b.ref = 1;  // ours while the rows are written
  try {
    fill(id);
  } catch (...) {
    b.ref = 0;
    pool_.give_back(id);
    throw;
  }
  b.ref = 0;
  b.hash = key;
  b.indexed = true;
  std::copy(tokens, tokens + block_size(), tokens_.begin() + id * block_size());
  index_.insert(key, id);
  lru_push_back(id);
  return true;
}

void BlockManager::take_committed(std::vector<int32_t>& out) {
  out.insert(out.end(), committed_.begin(), committed_.end());
  committed_.clear();
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

void BlockManager::release_one(int32_t id) {
  Block& b = blocks_[size_t(id)];
  check(b.ref > 0, "KV block ", id, " released more often than it was taken");
  if (--b.ref > 0) return;
  if (b.indexed) {
    lru_push_back(id);
  } else {
    b.hash = 0;  // a key that only chained: the block's next owner starts clean
    pool_.give_back(id);
  }
}

void BlockManager::release(std::vector<int32_t>& table) {
  // Release the tail first so that, among one sequence's blocks, the prefix stays cached longest.
  for (auto it = table.rbegin(); it != table.rend(); ++it) release_one(*it);
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
  if (tail > 0) table.push_back(private_copy(src[size_t(full)], tail));
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
    if (index_.contains(h)) continue;
    b.indexed = true;
    std::copy(t, t + bs, tokens_.begin() + table[size_t(i)] * bs);
    index_.insert(h, table[size_t(i)]);
    if (record_commits_) committed_.push_back(table[size_t(i)]);
  }
}

BlockStats BlockManager::stats() const {
  BlockStats s;
  s.total = int64_t(blocks_.size());
  s.free = pool_.free_blocks();
  s.cached = lru_size_;
  s.used = s.total - s.free - s.cached;
  s.evictions = evictions_;
  return s;
}

}  // namespace dsinfer::cache
