// The disk tier's directory as a whole: what it holds (rebuilt by a scan at start and before each
// garbage collection, so a restart, a `kill -9` or another instance's writes are all seen) and
// the collector that keeps it under its capacity. Any number of instances may scan and collect
// the same directory at once: removing a file never disturbs a reader that has it open (POSIX
// keeps the inode until the last close), a reader that finds it gone just misses, and two
// collectors removing the same file both succeed (ENOENT is ignored).
// Least recently used means the oldest modification time: a hit refreshes its file's mtime, so
// every instance's use counts, whoever wrote the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsinfer::cache {

struct DiskBlockEntry {
  std::string path;
  uint64_t key = 0;
  std::string format;  // the format directory (<fingerprint>-<dtype>-b<block size>)
  int64_t bytes = 0;
  double mtime = 0;  // seconds since the epoch
};

struct DiskDirectoryScan {
  std::vector<DiskBlockEntry> blocks;
  int64_t bytes = 0;               // of the block files
  int64_t stale_temps_removed = 0; // temporary files of writers that died mid-write
};

// Every block file under `root`, of every format. Temporary files older than `stale_temp_s`
// (their writer died between write and rename) are removed on the way.
DiskDirectoryScan scan_block_directory(const std::string& root, double stale_temp_s, double now);

struct DiskGcResult {
  int64_t removed_files = 0, removed_bytes = 0;
  int64_t files_left = 0, bytes_left = 0;
};

// Removes the files older than `ttl_s` (0: no expiry), then the least recently used until the
// rest fit in `target_bytes`. `scan` is left holding what remains, oldest first.
DiskGcResult collect_block_garbage(DiskDirectoryScan& scan, double target_bytes, double ttl_s, double now);

}  // namespace dsinfer::cache
