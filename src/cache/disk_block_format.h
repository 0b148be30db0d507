// One KV block on disk: the file format of the disk tier under the prefix index (issue 16, the
// role 3FS plays in DeepSeek's serving). A block file holds one full 64-token block of every
// layer's latent rows, named by what it contains, so any instance sharing the directory can find,
// verify and load it:
//
//   path   <fingerprint:16 hex>-<dtype>-b<block size>/<key[0:2]>/<key:16 hex>.kvb
//          (a directory per model and cache format; 256 fan-out directories by the key's first
//          byte, so no directory grows past a few thousand entries per million blocks)
//   file   header (little-endian, 64 bytes):
//            magic "DSKVBLK1", u32 version (1), u32 header bytes (64),
//            u64 key (the block's chained prefix key, cache/block_hash.h), u64 model fingerprint,
//            u32 dtype, u32 block size, u32 layers, u32 row bytes,
//            u64 checksum of everything after the header, u64 checksum of the 56 bytes before it
//          the block's token ids (block size x i32), re-checked on a hit like the RAM index does
//          the rows: layer 0's block_size rows, then layer 1's, ... (the cache's own row format)
//
// Reading verifies the header, the checksums, the key, the format and the token ids before a
// single row is written into the pool, so a corrupt, truncated or foreign file is a miss (the
// block is recomputed), never wrong KV. Writing goes to a temporary file in the same directory
// and is renamed into place: readers see a whole file or none, and two instances writing the same
// block write the same bytes (content-addressed), so either rename wins.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "kernels/latent_cache.h"

namespace dsinfer::cache {

// What a block file must match to be used: its key and the cache format it was written in.
struct DiskBlockId {
  uint64_t key = 0;          // chained prefix key of the block (never 0)
  uint64_t fingerprint = 0;  // model fingerprint (DeepSeekModel::fingerprint)
  DType dtype = DType::kBF16;
  int64_t block_size = 64, num_layers = 0, row_bytes = 0;

  static DiskBlockId of(uint64_t key, uint64_t fingerprint, const kernels::KvCacheSpec& spec) {
    return {key, fingerprint, spec.dtype, spec.block_size, spec.num_layers, spec.row_bytes()};
  }
};

inline constexpr size_t kDiskBlockHeaderBytes = 64;

// The directory of every block of this model and cache format (<fingerprint>-<dtype>-b<block size>),
// and a block file's path, both relative to the tier's directory.
std::string disk_format_dirname(const DiskBlockId& id);
std::string disk_block_path(const DiskBlockId& id);
// Bytes of a block file of this format.
size_t disk_block_bytes(const DiskBlockId& id);

// The file's contents for block `block` of `cache` holding `tokens` (block_size ids).
std::vector<uint8_t> encode_disk_block(const DiskBlockId& id, const int32_t* tokens, const kernels::KvCacheView& cache,
                                       int32_t block);

// How a file checks against the block it should hold.
enum class DiskBlockCheck {
  kGood,
  kBad,        // truncated, corrupt, or another key, model or format under this name: remove it
  kCollision,  // a sound file of another prompt whose key collides with this one: keep it, miss
};

// Verifies `data` as the file of `id` holding `tokens` (header, checksums, key, format, size,
// token ids); `why` says what failed.
DiskBlockCheck verify_disk_block(const uint8_t* data, size_t size, const DiskBlockId& id, const int32_t* tokens,
                                 std::string& why);
// Copies a verified file's rows into block `block` of `cache`.
void copy_disk_block_rows(const uint8_t* data, const DiskBlockId& id, const kernels::KvCacheView& cache, int32_t block);

// verify_disk_block, then copy_disk_block_rows only if it is good. False, with the reason in
// `why` and nothing written, for a file that is truncated, corrupt, of another key, model or
// format, or of other tokens.
bool load_disk_block(const uint8_t* data, size_t size, const DiskBlockId& id, const int32_t* tokens,
                     const kernels::KvCacheView& cache, int32_t block, std::string& why);

// The key a block file's name states ("<16 hex>.kvb"); false for any other name.
bool parse_disk_block_name(const std::string& file_name, uint64_t& key);

// Writes `bytes` to `path` (creating its directories) through a temporary file in the same
// directory (named by host, process, a random nonce and a counter, so no two writers anywhere
// share one) and a rename, so a reader never sees a partial file. False, with the temporary file
// removed, when a file of that name appeared meanwhile (another writer's: the name is the
// content's, so it stays and counts as already present). Throws Error on failure (disk full,
// directory not writable), with nothing left behind.
bool write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace dsinfer::cache
