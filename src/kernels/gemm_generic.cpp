// The generic GEMM panel: plain C++ for every CPU, and the reference the vector panels are
// tested against. It runs the reduction order of gemm_internal.h with std::fma, so its results
// are the same bits as every vector path.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/dtype.h"
#include "kernels/gemm_internal.h"

namespace dsinfer::kernels::detail {

void gemm_panel_generic(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch) {
  const PackedMatrix& B = *g.b;
  const int64_t valid = std::min(kPanelCols, B.n - p * kPanelCols);
  int pos[kPanelCols];
  for (int c = 0; c < kPanelCols; ++c) pos[c] = packed_position(B.dtype, c);
  const uint8_t* panel = B.panel(p);
  const float* sb = B.panel_scales(p);
  float* c = g.c + p * kPanelCols;
  float acc[kPanelCols];
  for (int64_t k0 = 0; k0 < B.k; k0 += kScaleBlock) {
    const int64_t k1 = std::min(B.k, k0 + kScaleBlock), kb = k0 / kScaleBlock;
    // This block of the panel as fp32, [kk - k0][column].
    for (int64_t kk = k0; kk < k1; ++kk) {
      float* d = scratch + (kk - k0) * kPanelCols;
      const size_t row = size_t(kk) * kPanelCols;
      for (int col = 0; col < valid; ++col) {
        const size_t at = row + size_t(pos[col]);
        switch (B.dtype) {
          case DType::kF8E4M3: d[col] = e4m3_to_f32(panel[at]); break;
          case DType::kBF16: d[col] = bf16_to_f32(reinterpret_cast<const uint16_t*>(panel)[at]); break;
          default: d[col] = reinterpret_cast<const float*>(panel)[at]; break;
        }
      }
    }
    for (int64_t i = m0; i < m1; ++i) {
      const float* a = g.a + i * g.lda;
      std::fill(acc, acc + valid, 0.0f);
      for (int64_t kk = k0; kk < k1; ++kk) {
        const float av = a[kk], *w = scratch + (kk - k0) * kPanelCols;
        for (int col = 0; col < valid; ++col) acc[col] = std::fma(av, w[col], acc[col]);
      }
      const float s = (g.sa ? g.sa[i * g.ldsa + kb] : 1.0f) * (sb ? sb[kb] : 1.0f);
      float* ci = c + i * g.ldc;
      for (int col = 0; col < valid; ++col) ci[col] = kb == 0 ? acc[col] * s : std::fma(acc[col], s, ci[col]);
    }
  }
}

}  // namespace dsinfer::kernels::detail
