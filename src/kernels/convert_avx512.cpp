// AVX-512 bodies of kernels/convert.h, compiled for that ISA whatever the build's -march and
// called only when cpuid reports it. Each reproduces the scalar definition in base/dtype.h bit
// for bit; the comments say why each step is exact.
#if defined(__x86_64__)

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/dtype.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"

#include "base/simd.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized where their _mm*_undefined_* idiom is
// inlined (masked loads, reductions); see base/simd.h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace dsinfer::kernels::detail {

namespace {

__mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }

// 16 e4m3 bytes -> 16 fp32. Sign-extended to 16 bits, shifted left 7 and with bit 14 cleared,
// a byte s.eeee.mmm becomes the fp16 s.0eeee.mmm0000000: the same value divided by 2^8 (fp16's
// exponent bias is 15, e4m3's 7), subnormals included, since fp16 has them too. Widening to
// fp32 is exact, and multiplying by 2^8 * scale rounds once, like e4m3_to_f32(b) * scale.
// The NaN codes (0x7f, 0xff) come out finite and are patched by the caller.
inline __m512 e4m3x16_to_f32(__m128i bytes, __m512 times_256_scale) {
  __m256i w = _mm256_cvtepi8_epi16(bytes);
  w = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16(short(0xBFFF)));
  return _mm512_mul_ps(_mm512_cvtph_ps(w), times_256_scale);
}

}  // namespace

void e4m3_to_f32_avx512(const uint8_t* a, int64_t n, float scale, float* out) {
  const __m128i low7 = _mm_set1_epi8(0x7f);
  const __m512 mul = _mm512_set1_ps(256.0f * scale);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    const __m128i x = _mm_maskz_loadu_epi8(m, a + j);
    _mm512_mask_storeu_ps(out + j, m, e4m3x16_to_f32(x, mul));
    __mmask16 nan = _mm_mask_cmpeq_epi8_mask(m, _mm_and_si128(x, low7), low7);
    for (; nan; nan &= nan - 1) {
      const int i = __builtin_ctz(nan);
      out[j + i] = e4m3_to_f32(a[j + i]) * scale;
    }
  }
}

void bf16_to_f32_avx512(const uint16_t* a, int64_t n, float* out) {
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, a + j));
    _mm512_mask_storeu_ps(out + j, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
}

namespace {

// f32_to_bf16 on 16 lanes, the bf16 bits in the low half of each lane. Integer rounding as in
// the scalar definition (vcvtneps2bf16 would flush denormal inputs to zero).
inline __m512i f32x16_to_bf16(__m512i u) {
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

}  // namespace

void f32_to_bf16_avx512(const float* c, int64_t n, uint16_t* d) {
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    const __m512i r = f32x16_to_bf16(_mm512_castps_si512(_mm512_maskz_loadu_ps(m, c + j)));
    _mm512_mask_cvtepi32_storeu_epi16(d + j, m, r);
  }
}

void round_to_bf16_avx512(const float* x, int64_t n, float* out) {
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = tail_mask(n - j);
    const __m512i r = f32x16_to_bf16(_mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + j)));
    _mm512_mask_storeu_ps(out + j, m, _mm512_castsi512_ps(_mm512_slli_epi32(r, 16)));
  }
}

void quantize_row_1x128_avx512(const float* x, int64_t k, bool ue8m0, float* scales, uint8_t* codes, float* values) {
  const __m512i sign_bit = _mm512_set1_epi32(int32_t(0x80000000u)), one = _mm512_set1_epi32(1),
                round = _mm512_set1_epi32(0x7ffff), keep = _mm512_set1_epi32(int32_t(0xFFF00000u)),
                code_bias = _mm512_set1_epi32(120 << 3), code_max = _mm512_set1_epi32(0x7e),
                code_nan = _mm512_set1_epi32(0x7f);
  const __m512 e4m3_max = _mm512_set1_ps(kE4M3Max), sub_limit = _mm512_set1_ps(0x1.0p-6f),
               to_sub = _mm512_set1_ps(512.0f), from_sub = _mm512_set1_ps(1.0f / 512.0f),
               nan_value = _mm512_set1_ps(e4m3_to_f32(0x7f));
  for (int64_t b = 0; b < k_blocks(k); ++b) {
    const int64_t c0 = b * kScaleBlock, c1 = std::min(k, c0 + kScaleBlock);
    // amax: max(|x|, running) keeps the running value when |x| is NaN, as std::max does.
    __m512 vmax = _mm512_setzero_ps();
    for (int64_t c = c0; c < c1; c += 16)
      vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(c1 - c), x + c)), vmax);
    const float amax = _mm512_reduce_max_ps(vmax);
    float s = std::max(amax, 1e-4f) / kE4M3Max;
    if (ue8m0) s = std::exp2(std::ceil(std::log2(s)));
    scales[b] = s;
    const __m512 inv = _mm512_set1_ps(1.0f / s);
    for (int64_t c = c0; c < c1; c += 16) {
      const __mmask16 m = tail_mask(c1 - c);
      const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + c), inv);
      const __m512i sign = _mm512_and_si512(_mm512_castps_si512(y), sign_bit);
      const __m512 a = _mm512_abs_ps(y);
      const __mmask16 nan = _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
      const __mmask16 sat = _mm512_cmp_ps_mask(a, e4m3_max, _CMP_GE_OQ);
      const __mmask16 sub = _mm512_cmp_ps_mask(a, sub_limit, _CMP_LT_OQ);
      // Normal range: round the mantissa to 3 bits, ties to even; a carry bumps the exponent.
      const __m512i u = _mm512_castps_si512(a);
      const __m512i up = _mm512_add_epi32(_mm512_add_epi32(u, round), _mm512_and_si512(_mm512_srli_epi32(u, 20), one));
      // Subnormal range: multiples of 2^-9, rounded to nearest even by the vector unit.
      const __m512 t = _mm512_roundscale_ps(_mm512_mul_ps(a, to_sub), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      if (values) {
        __m512 v = _mm512_castsi512_ps(_mm512_and_si512(up, keep));
        v = _mm512_mask_mul_ps(v, sub, t, from_sub);
        v = _mm512_mask_mov_ps(v, sat, e4m3_max);
        v = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), sign));
        _mm512_mask_storeu_ps(values + c, m, _mm512_mask_mov_ps(v, nan, nan_value));
      }
      if (codes) {
        __m512i q = _mm512_sub_epi32(_mm512_srli_epi32(up, 20), code_bias);
        q = _mm512_mask_mov_epi32(q, sub, _mm512_cvttps_epi32(t));
        q = _mm512_mask_mov_epi32(q, sat, code_max);
        q = _mm512_or_si512(q, _mm512_srli_epi32(sign, 24));
        q = _mm512_mask_mov_epi32(q, nan, code_nan);
        _mm512_mask_cvtepi32_storeu_epi8(codes + c, m, q);
      }
    }
  }
}

}  // namespace dsinfer::kernels::detail

#pragma GCC diagnostic pop
#pragma GCC pop_options

#endif  // __x86_64__
