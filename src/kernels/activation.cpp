#include "kernels/activation.h"

#include <cmath>

#include "base/simd.h"
#include "base/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/exp_avx512.h"

namespace dsinfer::kernels {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")
namespace {


void silu_row_avx512(const float* g, const float* u, int64_t n, float* o) {
  const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
    __m512 gv = _mm512_maskz_loadu_ps(m, g + j), uv = _mm512_maskz_loadu_ps(m, u + j);
    __m512 s = _mm512_div_ps(gv, _mm512_add_ps(one, exp512(_mm512_sub_ps(zero, gv))));
    _mm512_mask_storeu_ps(o + j, m, _mm512_mul_ps(s, uv));
  }
}

}  // namespace
#pragma GCC pop_options

void silu_and_mul(const float* gate_up, int64_t m, int64_t n, float* out) {
  const bool avx512 = active_isa() == Isa::kAvx512;
  auto rows = [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const float* g = gate_up + int64_t(i) * 2 * n;
      const float* u = g + n;
      float* o = out + int64_t(i) * n;
      if (avx512) silu_row_avx512(g, u, n, o);
      else
        for (int64_t j = 0; j < n; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
    }
  };
  // A prefill's routed experts apply it to ~16K rows a layer.
  parallel_rows(size_t(m), size_t(n), rows);
}

}  // namespace dsinfer::kernels
