// The disk tier of the prefix cache (the role 3FS plays in DeepSeek's serving, docs/serving.md):
// full KV blocks in files named by their chained prefix key (cache/disk_block_format.h), in a
// directory any number of instances may share. It does its I/O on threads of its own, never the
// step thread's:
//   probe   answers a lookup whose first block has no file at once (a miss), without waiting
//           behind reads; any other lookup goes to the readers
//   readers (reader_threads of them, each lookup on one) open a prompt's block files in chain
//           order, read those found in one batch (io_uring, or pread where the kernel refuses a
//           ring), and verify each; lookups run concurrently, so a slow one holds up no other.
//           The engine takes the verified files at a step boundary and copies their rows into
//           the pool
//   writer  writes blocks the RAM index gained (write-through: docs/serving.md says why) from the
//           pool, while the engine keeps them pinned, through a temporary file and a rename
//   gc      rebuilds the index of what is on disk from the directory (at start and every
//           interval) and removes expired and least recently used files past the capacity
// Nothing it reads is used unverified: a truncated, corrupt or foreign file is a miss, removed so
// it can be written again. A directory that cannot be written (disk full, permissions) leaves the
// tier read-only: logged once, shown in metrics, retried after a while.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cache/block_file_reader.h"
#include "cache/disk_block_format.h"
#include "cache/disk_tier_metrics.h"
#include "kernels/latent_cache.h"

namespace dsinfer::cache {

enum class DiskLookupStage { kProbed, kOpened };

struct DiskTierOptions {
  std::string dir;                 // shared by every instance that should share blocks
  double capacity_bytes = 10e9;    // the collector keeps the directory's block files under this
  double ttl_s = 0;                // files unused this long are removed; 0: no expiry
  bool direct_io = false;          // O_DIRECT reads: the page cache never serves (or holds) a block
  BlockIoBackend backend = BlockIoBackend::kUring;
  int64_t max_pending_writes = 64; // blocks queued or being written; beyond, write-through skips
  double gc_interval_s = 60;       // rescan and collect at least this often
  double retry_after_error_s = 30; // a failed write makes the tier read-only this long
  double stale_temp_s = 600;       // a temporary file this old belongs to a writer that died
  int reader_threads = 4;          // lookups read concurrently (each with its own ring)
  double read_delay_s = 0;         // each block file opened waits this long before the read: a slow
                                   // shared file system (tests); a miss never waits
  // Tests only: called on the reader thread when it takes a probed lookup (nothing opened yet),
  // then with the files it found open, before they are read: a collector elsewhere may remove
  // the files at either point.
  std::function<void(DiskLookupStage)> lookup_hook;
};

// The verified files of one lookup: the first `keys.size()` blocks of the chain that was asked.
struct DiskLoad {
  uint64_t ticket = 0;
  std::vector<uint64_t> keys;
  std::vector<PageBuffer> files;
};

class DiskTier {
 public:
  // `cache`: the pool the blocks are written from and loaded into (its format names the files);
  // `fingerprint`: the model's. `on_load`: called on a reader (or the probe) thread when a lookup
  // finished; lookups may finish out of order.
  DiskTier(DiskTierOptions options, uint64_t fingerprint, const kernels::KvCacheView& cache,
           std::function<void()> on_load);
  ~DiskTier();  // finishes the writes queued, then stops the threads
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  // Step thread. Looks up consecutive blocks of one chain (`tokens`: block_size ids per key) in
  // order, stopping at the first that is missing or fails verification. Returns the lookup's
  // ticket; the result comes out of take_loads(), not necessarily in the order asked: a miss
  // comes back at once, and a quick hit need not wait for a slow one.
  uint64_t lookup(std::vector<uint64_t> keys, std::vector<int32_t> tokens);
  void take_loads(std::vector<DiskLoad>& out);
  // Copies block i of a load into block `block` of the pool.
  void copy_rows(const DiskLoad& load, size_t i, int32_t block) const;
  // Hands a load's buffers back once its rows are copied: later lookups read into them, so a
  // steady stream of hits faults in no fresh pages.
  void recycle(DiskLoad& load);

  // Queues pool block `block` (full, indexed under `key`, holding `tokens`) for writing. The
  // caller keeps the block's rows unchanged (pinned) until take_stored() hands it back. False,
  // and nothing queued, when the block is known to be on disk, the tier is read-only or the
  // queue is full.
  bool store(uint64_t key, const int32_t* tokens, int32_t block);
  void take_stored(std::vector<int32_t>& blocks);

  DiskTierMetrics metrics() const;
  // Rescans the directory and collects garbage now (the gc thread's work; tests call it).
  void collect_garbage();

 private:
  struct LookupJob {
    uint64_t ticket;
    std::vector<uint64_t> keys;
    std::vector<int32_t> tokens;
  };
  struct WriteJob {
    uint64_t key;
    std::vector<int32_t> tokens;
    int32_t block;
  };

  DiskTierOptions options_;
  DiskBlockId format_;  // key 0: the format every file of this tier has
  kernels::KvCacheView cache_;
  std::function<void()> on_load_;
  std::vector<std::unique_ptr<BlockFileReader>> readers_;  // one per reader thread, used by it only

  mutable std::mutex mu_;
  std::condition_variable probe_cv_, read_cv_, write_cv_, gc_cv_;
  bool stop_ = false;
  uint64_t next_ticket_ = 1;
  std::deque<LookupJob> lookups_;  // to probe
  std::deque<LookupJob> reads_;    // probed: their first block has a file
  int reading_ = 0;                // readers busy with a lookup
  double reading_since_ = 0;       // when reading_ last went from 0 to 1
  std::vector<DiskLoad> loads_;
  std::deque<WriteJob> writes_;
  int64_t writing_ = 0;  // queued plus the one being written
  std::vector<int32_t> stored_;
  std::vector<PageBuffer> spare_;  // recycled buffers, at most kSpareBytes of them
  size_t spare_bytes_ = 0;
  std::unordered_set<uint64_t> present_;  // keys of this format known to be on disk
  double read_only_until_ = 0;
  bool gc_requested_ = false;
  int64_t bytes_since_scan_ = 0, files_since_scan_ = 0;  // our writes since the last scan
  DiskTierMetrics m_;

  std::thread probe_thread_, write_thread_, gc_thread_;
  std::vector<std::thread> read_threads_;
  // Waits (holding `lock` on mu_) for a lookup in `queue` and takes it; false once the tier stops.
  bool take_lookup(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, std::deque<LookupJob>& queue,
                   LookupJob& job);
  void probe_loop();
  void read_loop(BlockFileReader& reader);
  void write_loop();
  void gc_loop();
  void finish_lookup(DiskLoad load);
  DiskLoad run_lookup(BlockFileReader& reader, const LookupJob& job);
  void run_write(const WriteJob& job);
  std::string path_of(uint64_t key) const;
  static constexpr size_t kSpareBytes = size_t(256) << 20;
};

}  // namespace dsinfer::cache
