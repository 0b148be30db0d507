// The paged latent KV pool: one allocation holding every layer's [num_blocks, block_size, row]
// latent rows (a row is spec.row_bytes(): dim values, or FP8's packed row), and the one free list
// of block ids (the BlockManager takes from and returns to it). Sequences own block ids, never
// memory; the model reaches the rows through kernels::KvCacheView and the sequence's block table.
#pragma once

#include <cstdint>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/dtype.h"
#include "kernels/latent_cache.h"

namespace dsinfer::cache {

class KvPool {
 public:
  KvPool(const kernels::KvCacheSpec& spec, int64_t num_blocks);

  // Blocks needed for `tokens` tokens.
  int64_t blocks_for(int64_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }
  // Appends `count` free block ids to `table`; false (and nothing taken) when too few are free.
  bool allocate(int64_t count, std::vector<int32_t>& table);
  void release(const std::vector<int32_t>& blocks);
  // One block: the lowest-numbered free one first; -1 when none is free.
  int32_t take();
  void give_back(int32_t block);

  int64_t free_blocks() const { return int64_t(free_.size()); }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  kernels::KvCacheView view();
  // Copies the first `rows` token rows of block src into block dst, in every layer.
  void copy_block(int32_t src, int32_t dst, int64_t rows);

  // Blocks (of every layer) that fit in `bytes`.
  static int64_t blocks_in_bytes(double bytes, const kernels::KvCacheSpec& spec);

 private:
  kernels::KvCacheSpec spec_;
  int64_t num_blocks_, block_size_;
  AlignedBuffer<uint8_t> storage_;
  std::vector<int32_t> free_;
};

}  // namespace dsinfer::cache
