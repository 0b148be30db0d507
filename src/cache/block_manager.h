// The block manager: ref-counted 64-token blocks of the paged latent KV pool plus the prefix
// index (nano-vllm's block_manager, with 3FS-style explicit states; docs/serving.md has the
// table). A block is in exactly one state:
//   free     — on the free list, holds nothing useful
//   used     — ref count > 0: in one or more sequences' block tables
//   cached   — ref count 0 but its 64 tokens are indexed by chained hash: reusable by a later
//              prefix hit, evicted least-recently-released first when fresh blocks run out
// Only full blocks whose KV has been written are indexed (commit()). A lookup walks the prompt
// block by block, re-checks the stored token ids on every hash hit, and stops at the first miss.
// A block's chained key lives on the block, and only there: a sequence's table is enough to
// continue its chain. Free blocks come from, and go back to, the KvPool's free list.
// The disk tier (cache/disk_tier.h) sits under the index: blocks it loads enter as cached blocks
// (insert_loaded), blocks the index gains are reported (take_committed) so they can be written
// through, and a block being written is pinned (one more reference) until its write is done.
// Not thread-safe: the engine's step thread is its only user.
#pragma once

#include <cstdint>
#include <vector>

#include "base/function_ref.h"
#include "cache/block_index.h"
#include "cache/kv_pool.h"

namespace dsinfer::cache {

struct BlockStats {
  int64_t total = 0, used = 0, cached = 0, free = 0;
  int64_t evictions = 0;
};

class BlockManager {
 public:
  // fingerprint: identifies the model and cache dtype (keys of different models never meet).
  BlockManager(KvPool& pool, uint64_t fingerprint, bool prefix_caching = true);

  int64_t block_size() const { return pool_.block_size(); }
  int64_t blocks_for(int64_t tokens) const { return pool_.blocks_for(tokens); }

  // Blocks that allocate() can hand out now: free plus evictable cached blocks.
  int64_t available() const { return pool_.free_blocks() + lru_size_; }

  // Longest cached prefix of tokens[0, n) in whole blocks, leaving at least `keep` tokens
  // uncached. Appends the blocks to `table` (taking a reference on each; the table holds
  // committed blocks only, usually none); returns the number of tokens covered. When all of
  // tokens[0, n) is cached in whole blocks, the last block is copied into a private one and only
  // the final `keep` tokens are left to compute.
  int64_t match_prefix(const int32_t* tokens, int64_t n, int64_t keep, std::vector<int32_t>& table);
  // The cache holds a layer whose row at a position depends on the next token too (the MTP
  // module's): a hit ending at a block boundary leaves that block's last token to recompute.
  void set_lookahead(bool on) { lookahead_ = on; }
  // How many of `count` consecutive full blocks (their chained keys, cache/block_hash.h's
  // prefix_keys, and their block_size token ids each) the index holds from the first on, taking
  // nothing: where a disk lookup starts.
  int64_t cached_prefix_blocks(const uint64_t* keys, const int32_t* tokens, int64_t count) const;

  // Appends `count` fresh blocks (ref 1) to table, evicting cached blocks if needed. False and
  // nothing taken when fewer than `count` are available.
  bool allocate(int64_t count, std::vector<int32_t>& table);

  // Drops one reference on each block; the table is left empty. Indexed blocks become cached
  // (most recently used last), the rest free.
  void release(std::vector<int32_t>& table);

  // A copy-on-fork of a sequence with `tokens` tokens in the cache (n > 1 choices): the full
  // blocks are shared (one more reference each), a partial last block is copied into a fresh
  // one. Appends to `table`; false and nothing taken when no block is available for the copy.
  bool fork(const std::vector<int32_t>& src, int64_t tokens, std::vector<int32_t>& table);

  // Keys and indexes the newly full blocks of a sequence whose first `computed` tokens are in
  // the KV cache (the blocks before them were committed by earlier calls, or shared).
  void commit(const int32_t* tokens, int64_t computed, const std::vector<int32_t>& table);
  // The chained key of a committed block (0: not full or not committed yet).
  uint64_t key(int32_t block) const { return blocks_[size_t(block)].hash; }
  bool indexed(int32_t block) const { return blocks_[size_t(block)].indexed; }
  // An indexed block's token ids (block_size of them).
  const int32_t* block_tokens(int32_t block) const { return tokens_of(block); }

  // The disk tier's side. Indexes a block loaded from disk as a cached block (most recently used)
  // under `key`, after `fill` has written its rows into the fresh block it is given. True when the
  // key is indexed afterwards (also when it already was: nothing is loaded then); false when no
  // block is available.
  bool insert_loaded(uint64_t key, const int32_t* tokens, FunctionRef<void(int32_t block)> fill);
  // Blocks indexed by commit() since the last call (when recording is on), to be written through.
  void record_commits(bool on) { record_commits_ = on; }
  void take_committed(std::vector<int32_t>& out);
  // One more reference, so the block is neither evicted nor reused while its rows are read
  // elsewhere (a write to disk); unpin() drops it.
  void pin(int32_t block) { hold(blocks_[size_t(block)]); }
  void unpin(int32_t block) { release_one(block); }

  BlockStats stats() const;
  int64_t ref_count(int32_t block) const { return blocks_[size_t(block)].ref; }
  kernels::KvCacheView view() { return pool_.view(); }

 private:
  struct Block {
    int32_t ref = 0;
    uint64_t hash = 0;     // chained key once full and committed; 0 before
    bool indexed = false;  // in index_ (a twin computed first keeps the entry; this one only chains)
    bool in_lru = false;
    int32_t lru_prev = -1, lru_next = -1;  // the LRU list of cached blocks, threaded through blocks_
  };

  KvPool& pool_;
  uint64_t fingerprint_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  // Indexed blocks' token ids, block_size per block, for the re-check on a hash hit.
  std::vector<int32_t> tokens_;
  // Cached blocks, least recently released first (an intrusive list: no allocation per release).
  int32_t lru_head_ = -1, lru_tail_ = -1;
  int64_t lru_size_ = 0;
  BlockIndex index_;
  int64_t evictions_ = 0;
  bool record_commits_ = false;
  bool lookahead_ = false;
  std::vector<int32_t> committed_;  // reserved for every block: recording allocates nothing

  const int32_t* tokens_of(int32_t block) const { return tokens_.data() + size_t(block) * size_t(block_size()); }
  bool same_tokens(int32_t block, const int32_t* tokens) const;
  // The indexed block under `key` holding exactly `tokens` (block_size ids), or -1.
  int32_t cached_block(uint64_t key, const int32_t* tokens) const;
  void lru_push_back(int32_t id);
  void lru_remove(int32_t id);

  int32_t take_one();
  // A fresh block (ref 1, unindexed) holding src's first `rows` rows; a block must be available
  // and src held, so that taking one cannot evict it.
  int32_t private_copy(int32_t src, int64_t rows);
  void release_one(int32_t id);
  void unindex(int32_t id);
  void hold(Block& b);  // one more reference; a cached block leaves the LRU
};

}  // namespace dsinfer::cache
