#include "kernels/sampling.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu_features.h"
#include "kernels/exp_poly.h"
#include "kernels/lane_fold.h"

namespace dsinfer::kernels {

// exp_weights on every path: w[i] = exp_poly((x[i] - shift) * scale), the same bits everywhere,
// and the sum in one order, so a seeded sample is the same on every machine: element i of each
// full block of 16 goes to double lane i; the 16 lanes fold as t[j] = l[j] + l[j + 8],
// u[j] = t[j] + t[j + 4], v[j] = u[j] + u[j + 2], v[0] + v[1]; the tail is added in order.
namespace {

using detail::fold16;

double exp_tail(const float* x, int64_t i, int64_t n, float shift, float scale, float* w, double sum) {
  for (; i < n; ++i) sum += w[i] = exp_poly((x[i] - shift) * scale);
  return sum;
}

double exp_weights_generic(const float* x, int64_t n, float shift, float scale, float* w) {
  double lanes[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) lanes[j] += w[i + j] = exp_poly((x[i + j] - shift) * scale);
  return exp_tail(x, i, n, shift, scale, w, fold16(lanes));
}

float max_generic(const float* x, int64_t n) {
  float best = -INFINITY;
  for (int64_t i = 0; i < n; ++i) best = std::max(best, x[i]);
  return best;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) double exp_weights_avx2(const float* x, int64_t n, float shift, float scale,
                                                             float* w) {
  const __m256 vs = _mm256_set1_ps(shift), vk = _mm256_set1_ps(scale);
  __m256d a[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int h = 0; h < 2; ++h) {
      const __m256 e = exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * h), vs), vk));
      _mm256_storeu_ps(w + i + 8 * h, e);
      a[2 * h] = _mm256_add_pd(a[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
      a[2 * h + 1] = _mm256_add_pd(a[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
  alignas(32) double lanes[16];
  for (int q = 0; q < 4; ++q) _mm256_store_pd(lanes + 4 * q, a[q]);
  return exp_tail(x, i, n, shift, scale, w, fold16(lanes));
}

__attribute__((target("avx2"))) float max_avx2(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  alignas(32) float l[8];
  _mm256_store_ps(l, m);
  float best = -INFINITY;
  for (float v : l) best = std::max(best, v);
  for (; i < n; ++i) best = std::max(best, x[i]);
  return best;
}

__attribute__((target("avx512f,avx512dq,fma"))) double exp_weights_avx512(const float* x, int64_t n, float shift,
                                                                          float scale, float* w) {
  const __m512 vs = _mm512_set1_ps(shift), vk = _mm512_set1_ps(scale);
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 e = exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs), vk));
    _mm512_storeu_ps(w + i, e);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
  }
  alignas(64) double lanes[16];
  _mm512_store_pd(lanes, acc0);
  _mm512_store_pd(lanes + 8, acc1);
  return exp_tail(x, i, n, shift, scale, w, fold16(lanes));
}

__attribute__((target("avx512f"))) float max_avx512(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  float best = _mm512_reduce_max_ps(m);
  for (; i < n; ++i) best = std::max(best, x[i]);
  return best;
}
#endif

}  // namespace

float max_value(const float* x, int64_t n) {
#if defined(__x86_64__)
  switch (active_isa()) {
    case Isa::kAvx512: return max_avx512(x, n);
    case Isa::kAvx2: return max_avx2(x, n);
    default: break;
  }
#endif
  return max_generic(x, n);
}

int32_t argmax(const float* logits, int64_t n) {
  // The maximum first (vectorised), then the first index holding it: the lowest id on ties.
  const float mx = max_value(logits, n);
  for (int64_t i = 0; i < n; ++i)
    if (logits[i] == mx) return int32_t(i);
  return 0;  // all NaN
}

double exp_weights(const float* x, int64_t n, float shift, float scale, float* w) {
#if defined(__x86_64__)
  switch (active_isa()) {
    case Isa::kAvx512: return exp_weights_avx512(x, n, shift, scale, w);
    case Isa::kAvx2: return exp_weights_avx2(x, n, shift, scale, w);
    default: break;
  }
#endif
  return exp_weights_generic(x, n, shift, scale, w);
}

}  // namespace dsinfer::kernels
