#include "kernels/weight_view.h"

#include "base/simd.h"

namespace dsinfer::kernels {

namespace {

void dequant_bf16(const uint16_t* src, int64_t n, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
#endif
  for (; i < n; ++i) out[i] = bf16_to_f32(src[i]);
}

// e4m3 -> fp16 by moving sign and the 7 exponent/mantissa bits into place gives exactly
// value * 2^-8 (same mantissa width alignment, exponent bias 15 instead of 7), for normals and
// subnormals alike; the 2^8 is folded into the block scale. NaN bytes never occur in weights.
void dequant_e4m3(const uint8_t* src, int64_t n, float scale, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  __m512 s = _mm512_set1_ps(scale * 256.0f);
  const __m256i sign_mask = _mm256_set1_epi16(int16_t(0x80));
  const __m256i mag_mask = _mm256_set1_epi16(0x7f);
  for (; i + 16 <= n; i += 16) {
    __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(b, sign_mask), 8),
                                _mm256_slli_epi16(_mm256_and_si256(b, mag_mask), 7));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_cvtph_ps(h), s));
  }
#endif
  for (; i < n; ++i) out[i] = e4m3_to_f32(src[i]) * scale;
}

}  // namespace

void dequant_row(const WeightView& w, int64_t r, float* out) {
  const int64_t n = w.cols;
  switch (w.dtype) {
    case DType::kF32: {
      const float* src = static_cast<const float*>(w.data) + r * n;
      for (int64_t i = 0; i < n; ++i) out[i] = src[i];
      return;
    }
    case DType::kBF16:
      dequant_bf16(static_cast<const uint16_t*>(w.data) + r * n, n, out);
      return;
    case DType::kF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + r * n;
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(src[i]);
      return;
    }
    case DType::kF8E4M3: {
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + r * n;
      for (int64_t c = 0; c < n; c += w.block_cols) {
        int64_t len = c + w.block_cols <= n ? w.block_cols : n - c;
        dequant_e4m3(src + c, len, w.scale(r, c), out + c);
      }
      return;
    }
  }
}

}  // namespace dsinfer::kernels
