// A view of one layer's paged latent KV cache, FlashMLA's layout: [num_blocks, block_size, dim]
// where each token row holds the kv_lora latent followed by the shared rope key (576 values for
// DeepSeek-V3). Rows are fp32 (verification precision) or bf16 (serving precision, as FlashMLA).
// A sequence's tokens live in the blocks its block table names, in order.
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace dsinfer::kernels {

struct LatentCacheView {
  void* base = nullptr;  // this layer's first block
  DType dtype = DType::kBF16;
  int64_t block_size = 64;
  int64_t dim = 576;

  void* row(const int32_t* block_table, int64_t pos) const {
    int64_t block = block_table[pos / block_size];
    return static_cast<uint8_t*>(base) +
           ((block * block_size + pos % block_size) * dim) * int64_t(dtype_size(dtype));
  }
};

void latent_cache_store(const LatentCacheView& c, const int32_t* block_table, int64_t pos, const float* row);
// Copies rows [begin, begin + count) of a sequence into out [count, dim] as fp32.
void latent_cache_gather(const LatentCacheView& c, const int32_t* block_table, int64_t begin, int64_t count,
                         float* out);

}  // namespace dsinfer::kernels
