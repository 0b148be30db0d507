// A view of one layer's paged latent KV cache, FlashMLA's layout: [num_blocks, block_size, 1, dim]
// where each token row holds the kv_lora latent followed by the shared rope key (576 values for
// DeepSeek-V3). A sequence's tokens live in the blocks its block table names, in order. Rows are
//   kF32:    dim fp32 (verification precision);
//   kBF16:   dim bf16 (serving precision, as FlashMLA);
//   kF8E4M3: FlashMLA's FP8 row — (dim - rope_dim) e4m3 latent values, one fp32 scale per 128
//            latent channels, then the rope_dim rope values kept in bf16 (656 bytes for V3).
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace dsinfer::kernels {

// Tokens per KV block, FlashMLA's page size: the paging unit of the cache, the prefix cache's
// hashing unit and the disk tier's file.
constexpr int64_t kKvBlockTokens = 64;

struct LatentCacheView {
  void* base = nullptr;  // this layer's first block
  DType dtype = DType::kBF16;
  int64_t block_size = kKvBlockTokens;
  int64_t dim = 576;
  int64_t rope_dim = 64;  // kF8E4M3 only: the trailing values kept in bf16

  int64_t latent_dim() const { return dim - rope_dim; }
  int64_t fp8_scales() const { return (latent_dim() + 127) / 128; }
  int64_t row_bytes() const {
    if (dtype == DType::kF8E4M3) return latent_dim() + 4 * fp8_scales() + 2 * rope_dim;
    return dim * int64_t(dtype_size(dtype));
  }
  void* row(const int32_t* block_table, int64_t pos) const {
    int64_t block = block_table[pos / block_size];
    return static_cast<uint8_t*>(base) + (block * block_size + pos % block_size) * row_bytes();
  }
};

// Bytes of one row of `dim` values (rope_dim of them bf16 when FP8).
inline int64_t latent_row_bytes(DType dtype, int64_t dim, int64_t rope_dim = 64) {
  return LatentCacheView{nullptr, dtype, kKvBlockTokens, dim, rope_dim}.row_bytes();
}

// The shape of a model's whole latent cache: per layer and token one row of `dim` values (latent,
// then the rope_dim rope key) stored as `dtype`. The model states it (DeepSeekModel::cache_spec),
// the cache layer allocates it (cache::KvPool), and the model reads it back as a KvCacheView.
struct KvCacheSpec {
  int64_t num_layers = 0, dim = 0, rope_dim = 0;
  DType dtype = DType::kBF16;
  int64_t block_size = kKvBlockTokens;

  int64_t row_bytes() const { return latent_row_bytes(dtype, dim, rope_dim); }
  int64_t block_bytes() const { return num_layers * block_size * row_bytes(); }  // all layers
};

// The whole latent cache: num_layers regions of [num_blocks, block_size, row] each.
struct KvCacheView {
  void* base = nullptr;
  KvCacheSpec spec;
  int64_t num_blocks = 0;

  DType dtype() const { return spec.dtype; }
  LatentCacheView layer(int64_t l) const {
    const size_t layer_bytes = size_t(num_blocks * spec.block_size * spec.row_bytes());
    return {static_cast<uint8_t*>(base) + size_t(l) * layer_bytes, spec.dtype, spec.block_size, spec.dim, spec.rope_dim};
  }
};

// Stores one token row (dim fp32 values); FP8 quantises the latent per 128 channels with
// scale = max(amax, 1e-4) / 448.
void latent_cache_store(const LatentCacheView& c, const int32_t* block_table, int64_t pos, const float* row);
// Copies rows [begin, begin + count) of a sequence into out [count, dim] as fp32.
void latent_cache_gather(const LatentCacheView& c, const int32_t* block_table, int64_t begin, int64_t count,
                         float* out);

}  // namespace dsinfer::kernels
