// Small SIMD helpers shared by kernels and benchmarks on x86-64. Include this instead of
// <immintrin.h>: GCC 12 raises false -Wuninitialized warnings inside its own AVX-512 headers
// (the `__Y = __Y` idiom of _mm*_undefined_*), which -Werror would turn into build failures.
//
// The helpers carry their own target attributes, so they compile whatever the build's -march
// (a portable x86-64 build included) and inline into kernels compiled for that ISA or above.
// Call them only from code that runs after the run-time check (kernels/cpu_features.h).
#pragma once

#if defined(__x86_64__)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

namespace dsinfer {

// Sum of 8 lanes as ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)): the same tree as the lower half
// of hsum(__m512) below, so a 16-lane sum emulated with two __m256 folds identically.
__attribute__((target("avx2"))) inline float hsum(__m256 v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

// Sum of 16 lanes: lanes i and i + 8 first, then hsum(__m256).
__attribute__((target("avx512f"))) inline float hsum(__m512 v) {
  // Fold the upper 256 bits onto the lower by a lane shuffle (the extract intrinsics trip the warning).
  return hsum(_mm512_castps512_ps256(_mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e))));
}

}  // namespace dsinfer

#endif  // __x86_64__
