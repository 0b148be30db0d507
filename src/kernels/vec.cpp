#include "kernels/vec.h"

#include <cmath>

#include "base/simd.h"
#include "kernels/cpu_features.h"
#include "kernels/lane_fold.h"

namespace dsinfer::kernels {

// dot's one order, on every path: 4 accumulators of 16 lanes; blocks of 64 elements feed them
// in turn (element i of a block to accumulator i / 16, lane i % 16, by fma); then blocks of 16
// feed accumulator 0 and the last partial block accumulator 1; the result is
// hsum((s0 + s1) + (s2 + s3)) with hsum's tree (base/simd.h: lanes i and i + 8, then i and
// i + 4, i and i + 2, and the last two). AVX2 holds each 16-lane accumulator in two registers.
namespace {

using detail::fold16;

float dot_generic(const float* a, const float* b, int64_t n) {
  float s[4][16] = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int q = 0; q < 4; ++q)
      for (int j = 0; j < 16; ++j) s[q][j] = std::fma(a[i + 16 * q + j], b[i + 16 * q + j], s[q][j]);
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) s[0][j] = std::fma(a[i + j], b[i + j], s[0][j]);
  for (int j = 0; i + j < n; ++j) s[1][j] = std::fma(a[i + j], b[i + j], s[1][j]);
  float l[16];
  for (int j = 0; j < 16; ++j) l[j] = (s[0][j] + s[1][j]) + (s[2][j] + s[3][j]);
  return fold16(l);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 s[4][2];
  for (auto& q : s) q[0] = q[1] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int q = 0; q < 4; ++q)
      for (int h = 0; h < 2; ++h) {
        const int64_t at = i + 16 * q + 8 * h;
        s[q][h] = _mm256_fmadd_ps(_mm256_loadu_ps(a + at), _mm256_loadu_ps(b + at), s[q][h]);
      }
  for (; i + 16 <= n; i += 16)
    for (int h = 0; h < 2; ++h)
      s[0][h] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * h), _mm256_loadu_ps(b + i + 8 * h), s[0][h]);
  // The partial block feeds accumulator 1; lanes past n keep their sums (AVX-512's mask3 fma).
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int h = 0; i < n && h < 2; ++h) {
    const __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - i - 8 * h)), lane);
    const __m256 p = _mm256_fmadd_ps(_mm256_maskload_ps(a + i + 8 * h, in), _mm256_maskload_ps(b + i + 8 * h, in), s[1][h]);
    s[1][h] = _mm256_blendv_ps(s[1][h], p, _mm256_castsi256_ps(in));
  }
  alignas(32) float l[16];
  for (int h = 0; h < 2; ++h)
    _mm256_store_ps(l + 8 * h, _mm256_add_ps(_mm256_add_ps(s[0][h], s[1][h]), _mm256_add_ps(s[2][h], s[3][h])));
  return fold16(l);
}

__attribute__((target("avx512f,fma"))) float dot_avx512(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    __mmask16 m = __mmask16((1u << (n - i)) - 1);
    s1 = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1, m);
  }
  return hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
#endif

}  // namespace

float dot(const float* a, const float* b, int64_t n) {
#if defined(__x86_64__)
  switch (active_isa()) {
    case Isa::kAvx512: return dot_avx512(a, b, n);
    case Isa::kAvx2: return dot_avx2(a, b, n);
    default: break;
  }
#endif
  return dot_generic(a, b, n);
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace dsinfer::kernels
