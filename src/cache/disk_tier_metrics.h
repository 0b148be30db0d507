// What the KV disk tier (cache/disk_tier.h) counts, for /metrics: its own header, so the engine's
// metrics can carry it without the tier's threads and files.
#pragma once

#include <cstdint>
#include <string>

namespace dsinfer::cache {

struct DiskTierMetrics {
  // Lookups: blocks asked for (after the RAM index missed), found and verified, and files that
  // failed verification (removed) or held another prompt (a key collision).
  uint64_t lookups = 0, lookup_blocks = 0, hit_blocks = 0, bad_blocks = 0, collisions = 0;
  uint64_t read_bytes = 0;
  double read_seconds = 0;  // wall time while any reader was busy (open, read, verify)
  // Write-through: blocks written, found already on disk (another instance or an earlier run
  // wrote them), skipped (queue full or the tier read-only) and failed.
  uint64_t written_blocks = 0, written_bytes = 0, already_present = 0, skipped_writes = 0, write_errors = 0;
  uint64_t gc_runs = 0, gc_removed_files = 0, gc_removed_bytes = 0;
  int64_t files = 0, bytes = 0;  // block files in the directory (every format): last scan plus our writes since
  double capacity_bytes = 0;
  bool writable = true;
  std::string last_error;  // of the last failed write (the log has it too)
};

}  // namespace dsinfer::cache
