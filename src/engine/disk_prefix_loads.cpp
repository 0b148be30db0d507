#include "engine/disk_prefix_loads.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "cache/block_hash.h"

namespace dsinfer::engine {

cache::DiskTierOptions disk_tier_options(const EngineOptions& options) {
  cache::DiskTierOptions disk;
  disk.dir = options.kv_disk_dir;
  disk.capacity_bytes = options.kv_disk_gb * 1e9;
  disk.ttl_s = options.kv_disk_ttl_s;
  disk.direct_io = options.kv_disk_direct_io;
  if (const char* io = std::getenv("DSINFER_KV_DISK_IO"); io && std::string(io) == "pread")
    disk.backend = cache::BlockIoBackend::kPread;
  if (const char* ms = std::getenv("DSINFER_KV_DISK_READ_DELAY_MS")) disk.read_delay_s = std::atof(ms) / 1e3;
  return disk;
}

DiskPrefixLoads::DiskPrefixLoads(cache::DiskTierOptions options, cache::BlockManager& blocks, uint64_t fingerprint,
                                 const kernels::KvCacheView& cache, std::function<void()> wake)
    : blocks_(blocks),
      fingerprint_(fingerprint),
      tier_(std::make_unique<cache::DiskTier>(std::move(options), fingerprint, cache, std::move(wake))) {
  blocks_.record_commits(true);
}

DiskPrefixLoads::~DiskPrefixLoads() {
  // The writes still queued finish first (they read pinned blocks of the pool), then the pins go.
  tier_.reset();
  blocks_.record_commits(false);
}

bool DiskPrefixLoads::start(Sequence& seq) {
  const int64_t bs = blocks_.block_size();
  const int32_t* tokens = seq.tokens.data();
  const int64_t n = seq.num_prompt;
  const int64_t full = n / bs;  // a full last block helps too: the prefix match copies it
  if (full == 0) return false;
  std::vector<uint64_t> keys = cache::prefix_keys(tokens, n, bs, fingerprint_, full);
  const int64_t in_ram = blocks_.cached_prefix_blocks(keys.data(), tokens, full);
  if (in_ram >= full) return false;
  keys.erase(keys.begin(), keys.begin() + in_ram);
  std::vector<int32_t> ids(tokens + in_ram * bs, tokens + full * bs);
  const uint64_t ticket = tier_->lookup(std::move(keys), std::move(ids));
  pending_[ticket] = {&seq, in_ram, next_order_++};
  return true;
}

void DiskPrefixLoads::poll(std::vector<Sequence*>& ready) {
  loads_.clear();
  tier_->take_loads(loads_);
  if (loads_.empty()) return;
  const int64_t bs = blocks_.block_size();
  finished_.clear();
  for (cache::DiskLoad& load : loads_) {
    auto it = pending_.find(load.ticket);
    if (it == pending_.end()) {  // forgotten
      tier_->recycle(load);
      continue;
    }
    const Pending p = it->second;
    pending_.erase(it);
    int64_t loaded = 0;
    for (size_t i = 0; i < load.keys.size(); ++i) {
      const int32_t* tokens = p.seq->tokens.data() + (p.first_block + int64_t(i)) * bs;
      const bool in = blocks_.insert_loaded(load.keys[i], tokens, [&](int32_t block) { tier_->copy_rows(load, i, block); });
      if (!in) break;  // no block to load into: the rest is computed
      ++loaded;
    }
    p.seq->disk_hit_tokens = loaded * bs;
    finished_.push_back(p);
    tier_->recycle(load);
  }
  std::sort(finished_.begin(), finished_.end(), [](const Pending& a, const Pending& b) { return a.order < b.order; });
  for (const Pending& p : finished_) ready.push_back(p.seq);
}

void DiskPrefixLoads::forget(const Sequence& seq) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it)
    if (it->second.seq == &seq) {
      pending_.erase(it);
      return;
    }
}

void DiskPrefixLoads::write_through() {
  committed_.clear();
  blocks_.take_committed(committed_);
  for (int32_t b : committed_) {
    if (!blocks_.indexed(b)) continue;  // evicted since (it would hold other rows by now)
    const uint64_t key = blocks_.key(b);
    // Pinned before the writer can read it; store() refusing (already on disk, queue full, the
    // tier read-only) leaves the block alone.
    blocks_.pin(b);
    if (!tier_->store(key, blocks_.block_tokens(b), b)) blocks_.unpin(b);
  }
  stored_.clear();
  tier_->take_stored(stored_);
  for (int32_t b : stored_) blocks_.unpin(b);
}

}  // namespace dsinfer::engine
