#include "kernels/latent_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/simd.h"
#include "kernels/cpu_features.h"

namespace dsinfer::kernels {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,f16c,fma")
namespace {

// bf16 -> fp32: the bf16 bits are the upper half of the fp32.
void bf16_row_avx512(const uint16_t* s, int64_t n, float* o) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    _mm512_storeu_ps(o + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
  for (; i < n; ++i) o[i] = bf16_to_f32(s[i]);
}

// e4m3 -> fp16 by moving the sign and the 7 exponent/mantissa bits into place gives value * 2^-8
// exactly (normals and subnormals); the 2^8 folds into the scale.
void e4m3_row_avx512(const uint8_t* s, int64_t n, float scale, float* o) {
  const __m512 sc = _mm512_set1_ps(scale * 256.0f);
  const __m256i sign = _mm256_set1_epi16(int16_t(0x80)), mag = _mm256_set1_epi16(0x7f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(b, sign), 8), _mm256_slli_epi16(_mm256_and_si256(b, mag), 7));
    _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_cvtph_ps(h), sc));
  }
  for (; i < n; ++i) o[i] = e4m3_to_f32(s[i]) * scale;
}

}  // namespace
#pragma GCC pop_options

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
      const uint16_t* s = static_cast<const uint16_t*>(src);
      if (active_isa() == Isa::kAvx512) bf16_row_avx512(s, c.dim, o);
      else
        for (int64_t i = 0; i < c.dim; ++i) o[i] = bf16_to_f32(s[i]);
    } else {
      const int64_t lat = c.latent_dim();
      const uint8_t* q = static_cast<const uint8_t*>(src);
      const uint16_t* rope = reinterpret_cast<const uint16_t*>(q + lat + 4 * c.fp8_scales());
      for (int64_t b = 0; b < c.fp8_scales(); ++b) {
        float s;
        std::memcpy(&s, q + lat + 4 * b, sizeof s);
        const int64_t c0 = b * 128, c1 = std::min(lat, c0 + 128);
        if (active_isa() == Isa::kAvx512) e4m3_row_avx512(q + c0, c1 - c0, s, o + c0);
        else
          for (int64_t i = c0; i < c1; ++i) o[i] = e4m3_to_f32(q[i]) * s;
      }
      if (active_isa() == Isa::kAvx512) bf16_row_avx512(rope, c.rope_dim, o + lat);
      else
        for (int64_t i = 0; i < c.rope_dim; ++i) o[lat + i] = bf16_to_f32(rope[i]);
    }
  }
}

}  // namespace dsinfer::kernels
