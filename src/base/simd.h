// Small SIMD helpers shared by kernels and benchmarks. Include this instead of <immintrin.h>:
// GCC 12 raises false -Wuninitialized warnings inside its own AVX-512 headers (the
// `__Y = __Y` idiom of _mm*_undefined_*), which -Werror would turn into build failures.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

namespace dsinfer {

#if defined(__AVX512F__)
inline float hsum(__m512 v) {
  // Fold the upper 256 bits onto the lower by a lane shuffle (the extract intrinsics trip the warning).
  __m256 s = _mm512_castps512_ps256(_mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e)));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}
#endif

inline float hsum(__m256 v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

}  // namespace dsinfer
