// The engine's side of the KV disk tier (cache/disk_tier.h; docs/serving.md, "The disk tier").
// A new request whose prompt has full blocks beyond what the RAM index holds waits here, out of
// the scheduler's queue, while the tier looks them up: requests behind it are scheduled as if it
// were not there. When the lookup comes back (at a step boundary), the blocks found enter the RAM
// index as cached blocks and the request joins the queue, where its prefix match takes them like
// any RAM hit. After every step the blocks the index gained are written through to disk, pinned
// until written.
// Step thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "cache/block_manager.h"
#include "cache/disk_tier.h"
#include "engine/engine_options.h"
#include "engine/sequence.h"

namespace dsinfer::engine {

// The tier's options from the engine's, and two knobs from the environment for tests and
// benchmarks: DSINFER_KV_DISK_IO=pread (no io_uring) and DSINFER_KV_DISK_READ_DELAY_MS (a lookup
// waits that long per block file it opened before reading, as on a slow shared file system; a
// lookup that finds no file waits for nothing).
cache::DiskTierOptions disk_tier_options(const EngineOptions& options);

class DiskPrefixLoads {
 public:
  // `wake`: called (from one of the tier's threads) when a lookup finished, so the step loop looks.
  DiskPrefixLoads(cache::DiskTierOptions options, cache::BlockManager& blocks, uint64_t fingerprint,
                  const kernels::KvCacheView& cache, std::function<void()> wake);
  ~DiskPrefixLoads();

  // True when part of seq's prompt may be on disk: it waits here until poll() hands it back.
  bool start(Sequence& seq);
  // Sequences whose lookups finished, their blocks loaded into the RAM index (lookups finish out of
  // order: a miss or a quick hit passes a slow read; those finished together come in the order
  // they came); seq->disk_hit_tokens says how many prompt tokens the disk gave.
  void poll(std::vector<Sequence*>& ready);
  // seq ends before its lookup came back (cancelled): its result is dropped.
  void forget(const Sequence& seq);
  // Blocks the index gained go to disk (write-through); blocks written are unpinned.
  void write_through();

  size_t waiting() const { return pending_.size(); }
  cache::DiskTierMetrics metrics() const { return tier_->metrics(); }

 private:
  struct Pending {
    Sequence* seq;
    int64_t first_block;  // the lookup's first block index in the prompt
    uint64_t order;       // arrival order here
  };
  cache::BlockManager& blocks_;
  uint64_t fingerprint_;
  std::unique_ptr<cache::DiskTier> tier_;
  std::unordered_map<uint64_t, Pending> pending_;  // by ticket
  uint64_t next_order_ = 0;
  std::vector<cache::DiskLoad> loads_;
  std::vector<int32_t> committed_, stored_;
  std::vector<Pending> finished_;
};

}  // namespace dsinfer::engine
