#include "kernels/latent_cache.h"

#include <cstring>

namespace dsinfer::kernels {

void latent_cache_store(const LatentCacheView& c, const int32_t* block_table, int64_t pos, const float* row) {
  void* dst = c.row(block_table, pos);
  if (c.dtype == DType::kF32) {
    std::memcpy(dst, row, size_t(c.dim) * sizeof(float));
  } else {
    uint16_t* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < c.dim; ++i) d[i] = f32_to_bf16(row[i]);
  }
}

void latent_cache_gather(const LatentCacheView& c, const int32_t* block_table, int64_t begin, int64_t count,
                         float* out) {
  for (int64_t t = 0; t < count; ++t) {
    const void* src = c.row(block_table, begin + t);
    float* o = out + t * c.dim;
    if (c.dtype == DType::kF32) {
      std::memcpy(o, src, size_t(c.dim) * sizeof(float));
    } else {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < c.dim; ++i) o[i] = bf16_to_f32(s[i]);
    }
  }
}

}  // namespace dsinfer::kernels
