// exp(x) on 16 floats for the AVX-512 kernels (softmax, SiLU): 2^n * p(r) with n = round(x / ln 2),
// r = x - n ln 2 in two steps, and a degree-6 polynomial; ~2 ulp, x clamped to [-87, 88].
// Compiled for AVX-512 whatever the translation unit's flags, like the kernels that call it; call
// it only on CPUs that have AVX-512 (cpu_features.h).
#pragma once

#include "base/simd.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")

namespace dsinfer::kernels {

inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

}  // namespace dsinfer::kernels

#pragma GCC pop_options
