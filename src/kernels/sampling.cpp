#include "kernels/sampling.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu_features.h"
#include "kernels/exp_avx512.h"

namespace dsinfer::kernels {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")
namespace {

float max_avx512(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  float best = _mm512_reduce_max_ps(m);
  for (; i < n; ++i) best = std::max(best, x[i]);
  return best;
}

double exp_weights_avx512(const float* x, int64_t n, float shift, float scale, float* w) {
  const __m512 vs = _mm512_set1_ps(shift), vk = _mm512_set1_ps(scale);
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 e = exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs), vk));
    _mm512_storeu_ps(w + i, e);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
  }
  double sum = _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
  for (; i < n; ++i) sum += w[i] = std::exp((x[i] - shift) * scale);
  return sum;
}

}  // namespace
#pragma GCC pop_options

float max_value(const float* x, int64_t n) {
  if (active_isa() == Isa::kAvx512) return max_avx512(x, n);
  float best = -INFINITY;
  for (int64_t i = 0; i < n; ++i) best = std::max(best, x[i]);
  return best;
}

int32_t argmax(const float* logits, int64_t n) {
  // The maximum first (vectorised), then the first index holding it: the lowest id on ties.
  const float mx = max_value(logits, n);
  for (int64_t i = 0; i < n; ++i)
    if (logits[i] == mx) return int32_t(i);
  return 0;  // all NaN
}

double exp_weights(const float* x, int64_t n, float shift, float scale, float* w) {
  if (active_isa() == Isa::kAvx512) return exp_weights_avx512(x, n, shift, scale, w);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += w[i] = std::exp((x[i] - shift) * scale);
  return sum;
}


}  // namespace dsinfer::kernels
