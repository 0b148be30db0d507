// AVX2 + FMA panel kernels: the fallback for CPUs without AVX-512. Same reduction order as the
// AVX-512 kernels (see gemm_internal.h), so the results are bit-identical; B is decoded to fp32 a
// chunk at a time with scalar table lookups, which is slower but only the FMAs matter for m > 1.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/dtype.h"
#include "base/simd.h"
#include "kernels/gemm_internal.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsinfer::kernels::detail {

namespace {

template <int MR>
void rows_panel(const GemmProblem& g, const float* a, const float* sa, const float* sb, const float* b, int64_t k0,
                int64_t k1, float* c, const __m256i* mask) {
  for (int64_t kb0 = k0; kb0 < k1; kb0 += kScaleBlock) {
    const int64_t kend = std::min(kb0 + kScaleBlock, k1), kb = kb0 / kScaleBlock;
    __m256 acc[MR][8];
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < 8; ++j) acc[r][j] = _mm256_setzero_ps();
    const float* bk = b + (kb0 - k0) * kPanelCols;
    for (int64_t kk = kb0; kk < kend; ++kk, bk += kPanelCols) {
      for (int r = 0; r < MR; ++r) {
        __m256 av = _mm256_broadcast_ss(a + r * g.lda + kk);
        for (int j = 0; j < 8; ++j) acc[r][j] = _mm256_fmadd_ps(av, _mm256_load_ps(bk + 8 * j), acc[r][j]);
      }
    }
    for (int r = 0; r < MR; ++r) {
      const float s = (sa ? sa[r * g.ldsa + kb] : 1.0f) * (sb ? sb[kb] : 1.0f);
      const __m256 vs = _mm256_set1_ps(s);
      float* cr = c + r * g.ldc;
      for (int j = 0; j < 8; ++j) {
        __m256 v = kb == 0 ? _mm256_mul_ps(acc[r][j], vs)
                           : _mm256_fmadd_ps(acc[r][j], vs, _mm256_maskload_ps(cr + 8 * j, mask[j]));
        _mm256_maskstore_ps(cr + 8 * j, mask[j], v);
      }
    }
  }
}

}  // namespace

void gemm_panel_avx2(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch) {
  const PackedMatrix& B = *g.b;
  const int64_t valid = std::min(kPanelCols, B.n - p * kPanelCols);
  __m256i mask[8];
  for (int j = 0; j < 8; ++j) {
    alignas(32) int32_t bits[8];
    for (int t = 0; t < 8; ++t) bits[t] = 8 * j + t < valid ? -1 : 0;
    mask[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bits));
  }
  int pos[kPanelCols];
  for (int c = 0; c < kPanelCols; ++c) pos[c] = packed_position(B.dtype, c);
  const uint8_t* panel = B.panel(p);
  const float* sb = B.panel_scales(p);
  float* c = g.c + p * kPanelCols;
  for (int64_t k0 = 0; k0 < B.k; k0 += kChunkK) {
    const int64_t k1 = std::min(B.k, k0 + kChunkK);
    for (int64_t kk = k0; kk < k1; ++kk) {
      float* d = scratch + (kk - k0) * kPanelCols;
      const size_t row = size_t(kk) * kPanelCols;
      for (int col = 0; col < kPanelCols; ++col) {
        const size_t at = row + size_t(pos[col]);
        switch (B.dtype) {
          case DType::kF8E4M3: d[col] = e4m3_to_f32(panel[at]); break;
          case DType::kBF16: d[col] = bf16_to_f32(reinterpret_cast<const uint16_t*>(panel)[at]); break;
          default: d[col] = reinterpret_cast<const float*>(panel)[at]; break;
        }
      }
    }
    for (int64_t i = m0; i < m1; i += 3) {
      const int mr = int(std::min<int64_t>(3, m1 - i));
      const float* a = g.a + i * g.lda;
      const float* sa = g.sa ? g.sa + i * g.ldsa : nullptr;
      float* ci = c + i * g.ldc;
      if (mr == 3) rows_panel<3>(g, a, sa, sb, scratch, k0, k1, ci, mask);
      else if (mr == 2) rows_panel<2>(g, a, sa, sb, scratch, k0, k1, ci, mask);
      else rows_panel<1>(g, a, sa, sb, scratch, k0, k1, ci, mask);
    }
  }
}

}  // namespace dsinfer::kernels::detail

#pragma GCC pop_options
