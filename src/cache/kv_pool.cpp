#include "cache/kv_pool.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"

namespace dsinfer::cache {

KvPool::KvPool(int64_t num_layers, int64_t dim, DType dtype, int64_t num_blocks, int64_t block_size)
    : num_layers_(num_layers), dim_(dim), num_blocks_(num_blocks), block_size_(block_size), dtype_(dtype) {
  check(num_blocks > 0 && num_blocks <= INT32_MAX, "KV pool needs a positive block count, got ", num_blocks);
  storage_.resize(size_t(num_layers * num_blocks * block_size * dim) * dtype_size(dtype));
  free_.resize(size_t(num_blocks));
  // Hand out low ids first: pop_back takes from the end.
  for (int64_t i = 0; i < num_blocks; ++i) free_[size_t(i)] = int32_t(num_blocks - 1 - i);
}

bool KvPool::allocate(int64_t count, std::vector<int32_t>& table) {
  if (count > int64_t(free_.size())) return false;
  for (int64_t i = 0; i < count; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvPool::release(const std::vector<int32_t>& blocks) {
  free_.insert(free_.end(), blocks.rbegin(), blocks.rend());
}

model::KvCacheView KvPool::view() {
  return {storage_.data(), dtype_, num_layers_, num_blocks_, block_size_, dim_};
}

void KvPool::copy_block(int32_t src, int32_t dst, int64_t rows) {
  const size_t row_bytes = size_t(dim_) * dtype_size(dtype_);
  const size_t block_bytes = size_t(block_size_) * row_bytes;
  const size_t layer_bytes = size_t(num_blocks_) * block_bytes;
  for (int64_t l = 0; l < num_layers_; ++l) {
    uint8_t* base = storage_.data() + size_t(l) * layer_bytes;
    std::memcpy(base + size_t(dst) * block_bytes, base + size_t(src) * block_bytes, size_t(rows) * row_bytes);
  }
}

int64_t KvPool::blocks_in_bytes(double bytes, int64_t num_layers, int64_t dim, DType dtype, int64_t block_size) {
  double per_block = double(num_layers * block_size * dim) * double(dtype_size(dtype));
  return std::max<int64_t>(1, int64_t(bytes / per_block));
}

}  // namespace dsinfer::cache
