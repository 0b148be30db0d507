#include "kernels/latent_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/convert.h"

namespace dsinfer::kernels {

void latent_cache_store(const LatentCacheView& c, const int32_t* block_table, int64_t pos, const float* row) {
  void* dst = c.row(block_table, pos);
  if (c.dtype == DType::kF32) {
    std::memcpy(dst, row, size_t(c.dim) * sizeof(float));
  } else if (c.dtype == DType::kBF16) {
    uint16_t* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < c.dim; ++i) d[i] = f32_to_bf16(row[i]);
  } else {
    const int64_t lat = c.latent_dim();
    uint8_t* q = static_cast<uint8_t*>(dst);
    float* scales = reinterpret_cast<float*>(q + lat);
    uint16_t* rope = reinterpret_cast<uint16_t*>(q + lat + 4 * c.fp8_scales());
    for (int64_t b = 0; b < c.fp8_scales(); ++b) {
      const int64_t c0 = b * 128, c1 = std::min(lat, c0 + 128);
      float amax = 0;
      for (int64_t i = c0; i < c1; ++i) amax = std::max(amax, std::fabs(row[i]));
      const float s = std::max(amax, 1e-4f) / kE4M3Max;
      std::memcpy(scales + b, &s, sizeof s);
      for (int64_t i = c0; i < c1; ++i) q[i] = f32_to_e4m3(row[i] / s);
    }
    for (int64_t i = 0; i < c.rope_dim; ++i) rope[i] = f32_to_bf16(row[lat + i]);
  }
}

void latent_cache_gather(const LatentCacheView& c, const int32_t* block_table, int64_t begin, int64_t count,
                         float* out) {
  for (int64_t t = 0; t < count; ++t) {
    const void* src = c.row(block_table, begin + t);
    float* o = out + t * c.dim;
    if (c.dtype == DType::kF32) {
      std::memcpy(o, src, size_t(c.dim) * sizeof(float));
    } else if (c.dtype == DType::kBF16) {
      bf16_rows_to_f32(static_cast<const uint16_t*>(src), c.dim, 1, c.dim, o, c.dim);
    } else {
      const int64_t lat = c.latent_dim();
      const uint8_t* q = static_cast<const uint8_t*>(src);
      const uint16_t* rope = reinterpret_cast<const uint16_t*>(q + lat + 4 * c.fp8_scales());
      for (int64_t b = 0; b < c.fp8_scales(); ++b) {
        float s;
        std::memcpy(&s, q + lat + 4 * b, sizeof s);
        const int64_t c0 = b * 128, c1 = std::min(lat, c0 + 128);
        e4m3_to_f32_scaled(q + c0, c1 - c0, s, o + c0);
      }
      bf16_rows_to_f32(rope, c.rope_dim, 1, c.rope_dim, o + lat, c.rope_dim);
    }
  }
}

}  // namespace dsinfer::kernels
