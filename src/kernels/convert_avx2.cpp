// AVX2 bodies of kernels/convert.h, compiled for that ISA whatever the build's -march and called
// only when cpuid reports it. Each reproduces the scalar definition in base/dtype.h bit for bit,
// by the same steps as convert_avx512.cpp (see the comments there); tails run the scalar code.
#if defined(__x86_64__)

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/dtype.h"
#include "base/simd.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsinfer::kernels::detail {

namespace {

// 8 e4m3 bytes -> 8 fp32 (times 2^8 * scale folded into `mul`): the fp16 placement trick.
inline __m256 e4m3x8_to_f32(__m128i bytes8, __m256 mul) {
  __m128i w = _mm_cvtepi8_epi16(bytes8);
  w = _mm_and_si128(_mm_slli_epi16(w, 7), _mm_set1_epi16(short(0xBFFF)));
  return _mm256_mul_ps(_mm256_cvtph_ps(w), mul);
}

// f32_to_bf16 on 8 lanes, the bf16 bits in the low half of each lane.
inline __m256i f32x8_to_bf16(__m256i u) {
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
  const __m256i nan =
      _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(r, quiet, nan);
}

// The low 16 bits of 8 lanes, in order (values < 2^16).
inline __m128i narrow_epi32_to_epi16(__m256i v) {
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08));
}

}  // namespace

void e4m3_to_f32_avx2(const uint8_t* a, int64_t n, float scale, float* out) {
  const __m128i low7 = _mm_set1_epi8(0x7f);
  const __m256 mul = _mm256_set1_ps(256.0f * scale);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + j));
    _mm256_storeu_ps(out + j, e4m3x8_to_f32(x, mul));
    int nan = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(x, low7), low7)) & 0xff;
    for (; nan; nan &= nan - 1) {
      const int i = __builtin_ctz(unsigned(nan));
      out[j + i] = e4m3_to_f32(a[j + i]) * scale;
    }
  }
  for (; j < n; ++j) out[j] = e4m3_to_f32(a[j]) * scale;
}

void bf16_to_f32_avx2(const uint16_t* a, int64_t n, float* out) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + j)));
    _mm256_storeu_ps(out + j, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; j < n; ++j) out[j] = bf16_to_f32(a[j]);
}

void f32_to_bf16_avx2(const float* c, int64_t n, uint16_t* d) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i r = f32x8_to_bf16(_mm256_castps_si256(_mm256_loadu_ps(c + j)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + j), narrow_epi32_to_epi16(r));
  }
  for (; j < n; ++j) d[j] = f32_to_bf16(c[j]);
}

void round_to_bf16_avx2(const float* x, int64_t n, float* out) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i r = f32x8_to_bf16(_mm256_castps_si256(_mm256_loadu_ps(x + j)));
    _mm256_storeu_ps(out + j, _mm256_castsi256_ps(_mm256_slli_epi32(r, 16)));
  }
  for (; j < n; ++j) out[j] = round_to_bf16(x[j]);
}

void quantize_row_1x128_avx2(const float* x, int64_t k, bool ue8m0, float* scales, uint8_t* codes, float* values) {
  const __m256i sign_bit = _mm256_set1_epi32(int32_t(0x80000000u)), one = _mm256_set1_epi32(1),
                round = _mm256_set1_epi32(0x7ffff), keep = _mm256_set1_epi32(int32_t(0xFFF00000u)),
                code_bias = _mm256_set1_epi32(120 << 3), code_max = _mm256_set1_epi32(0x7e),
                code_nan = _mm256_set1_epi32(0x7f), abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256 e4m3_max = _mm256_set1_ps(kE4M3Max), sub_limit = _mm256_set1_ps(0x1.0p-6f),
               to_sub = _mm256_set1_ps(512.0f), from_sub = _mm256_set1_ps(1.0f / 512.0f),
               nan_value = _mm256_set1_ps(e4m3_to_f32(0x7f));
  for (int64_t b = 0; b < k_blocks(k); ++b) {
    const int64_t c0 = b * kScaleBlock, c1 = std::min(k, c0 + kScaleBlock);
    // amax: max(|x|, running) keeps the running value when |x| is NaN, as std::max does.
    __m256 vmax = _mm256_setzero_ps();
    int64_t c = c0;
    for (; c + 8 <= c1; c += 8)
      vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + c), _mm256_castsi256_ps(abs_mask)), vmax);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, vmax);
    float amax = 0;
    for (float v : lanes) amax = std::max(amax, v);
    for (; c < c1; ++c) amax = std::max(amax, std::fabs(x[c]));
    float s = std::max(amax, 1e-4f) / kE4M3Max;
    if (ue8m0) s = std::exp2(std::ceil(std::log2(s)));
    scales[b] = s;
    const float inv_s = 1.0f / s;
    const __m256 inv = _mm256_set1_ps(inv_s);
    for (c = c0; c + 8 <= c1; c += 8) {
      const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + c), inv);
      const __m256i sign = _mm256_and_si256(_mm256_castps_si256(y), sign_bit);
      const __m256 a = _mm256_and_ps(y, _mm256_castsi256_ps(abs_mask));
      const __m256 nan = _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
      const __m256 sat = _mm256_cmp_ps(a, e4m3_max, _CMP_GE_OQ);
      const __m256 sub = _mm256_cmp_ps(a, sub_limit, _CMP_LT_OQ);
      const __m256i u = _mm256_castps_si256(a);
      const __m256i up = _mm256_add_epi32(_mm256_add_epi32(u, round), _mm256_and_si256(_mm256_srli_epi32(u, 20), one));
      const __m256 t = _mm256_round_ps(_mm256_mul_ps(a, to_sub), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      if (values) {
        __m256 v = _mm256_castsi256_ps(_mm256_and_si256(up, keep));
        v = _mm256_blendv_ps(v, _mm256_mul_ps(t, from_sub), sub);
        v = _mm256_blendv_ps(v, e4m3_max, sat);
        v = _mm256_or_ps(v, _mm256_castsi256_ps(sign));
        _mm256_storeu_ps(values + c, _mm256_blendv_ps(v, nan_value, nan));
      }
      if (codes) {
        __m256i q = _mm256_sub_epi32(_mm256_srli_epi32(up, 20), code_bias);
        q = _mm256_blendv_epi8(q, _mm256_cvttps_epi32(t), _mm256_castps_si256(sub));
        q = _mm256_blendv_epi8(q, code_max, _mm256_castps_si256(sat));
        q = _mm256_or_si256(q, _mm256_srli_epi32(sign, 24));
        q = _mm256_blendv_epi8(q, code_nan, _mm256_castps_si256(nan));
        const __m128i w = narrow_epi32_to_epi16(q);
        _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + c), _mm_packus_epi16(w, w));
      }
    }
    for (; c < c1; ++c) {
      const uint8_t q = f32_to_e4m3(x[c] * inv_s);
      if (codes) codes[c] = q;
      if (values) values[c] = e4m3_to_f32(q);
    }
  }
}

}  // namespace dsinfer::kernels::detail

#pragma GCC pop_options

#endif  // __x86_64__
