#include "kernels/activation.h"

#include "base/simd.h"
#include "base/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/exp_poly.h"

namespace dsinfer::kernels {

namespace {

// o = g / (1 + exp(0 - g)) * u: the same operations on every path (exp_poly.h), so the paths
// agree bit for bit.
void silu_row_generic(const float* g, const float* u, int64_t n, float* o) {
  for (int64_t j = 0; j < n; ++j) o[j] = g[j] / (1.0f + exp_poly(0.0f - g[j])) * u[j];
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void silu_row_avx2(const float* g, const float* u, int64_t n, float* o) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 gv = _mm256_loadu_ps(g + j), uv = _mm256_loadu_ps(u + j);
    const __m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, gv))));
    _mm256_storeu_ps(o + j, _mm256_mul_ps(s, uv));
  }
  silu_row_generic(g + j, u + j, n - j, o + j);
}

__attribute__((target("avx512f,avx512dq,fma"))) void silu_row_avx512(const float* g, const float* u, int64_t n,
                                                                      float* o) {
  const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
    __m512 gv = _mm512_maskz_loadu_ps(m, g + j), uv = _mm512_maskz_loadu_ps(m, u + j);
    __m512 s = _mm512_div_ps(gv, _mm512_add_ps(one, exp512(_mm512_sub_ps(zero, gv))));
    _mm512_mask_storeu_ps(o + j, m, _mm512_mul_ps(s, uv));
  }
}
#endif

using SiluRow = void (*)(const float*, const float*, int64_t, float*);

SiluRow silu_row_for(Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx512) return silu_row_avx512;
  if (isa == Isa::kAvx2) return silu_row_avx2;
#endif
  return silu_row_generic;
}

}  // namespace

void silu_and_mul(const float* gate_up, int64_t m, int64_t n, float* out) {
  const SiluRow row = silu_row_for(active_isa());
  auto rows = [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const float* g = gate_up + int64_t(i) * 2 * n;
      row(g, g + n, n, out + int64_t(i) * n);
    }
  };
  // A prefill's routed experts apply it to ~16K rows a layer.
  parallel_rows(size_t(m), size_t(n), rows);
}

}  // namespace dsinfer::kernels
