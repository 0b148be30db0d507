#include "cache/kv_pool.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"

namespace dsinfer::cache {

KvPool::KvPool(const kernels::KvCacheSpec& spec, int64_t num_blocks)
    : spec_(spec), num_blocks_(num_blocks), block_size_(spec.block_size) {
  check(num_blocks > 0 && num_blocks <= INT32_MAX, "KV pool needs a positive block count, got ", num_blocks);
  storage_.resize(size_t(num_blocks * spec.block_bytes()));
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

int32_t KvPool::take() {
  if (free_.empty()) return -1;
  int32_t id = free_.back();
  free_.pop_back();
  return id;
}

void KvPool::give_back(int32_t block) { free_.push_back(block); }

kernels::KvCacheView KvPool::view() {
  return {storage_.data(), spec_, num_blocks_};
}

void KvPool::copy_block(int32_t src, int32_t dst, int64_t rows) {
  const size_t row_bytes = size_t(spec_.row_bytes());
  const size_t block_bytes = size_t(block_size_) * row_bytes;
  const size_t layer_bytes = size_t(num_blocks_) * block_bytes;
  for (int64_t l = 0; l < spec_.num_layers; ++l) {
    uint8_t* base = storage_.data() + size_t(l) * layer_bytes;
    std::memcpy(base + size_t(dst) * block_bytes, base + size_t(src) * block_bytes, size_t(rows) * row_bytes);
  }
}

int64_t KvPool::blocks_in_bytes(double bytes, const kernels::KvCacheSpec& spec) {
  return std::max<int64_t>(1, int64_t(bytes / double(spec.block_bytes())));
}

}  // namespace dsinfer::cache
