// PackedMatrix: a GEMM B operand ([n, k], DeepGEMM's NT layout: y = x · Bᵀ) repacked once at load
// time into 64-column panels so that every GEMM — a one-row decode GEMV or a 4096-row grouped
// expert GEMM — streams it front to back. Panel p holds columns [64p, 64p + 64) as k rows of 64
// elements (padding columns are zero); inside each row the 64 elements are permuted so that the
// AVX-512 decoder lands them in column order (bf16: unpack with zero; e4m3: two 128-entry byte
// tables give the bf16 hi/lo bytes, a byte unpack makes words, then a shift or a mask per 32-bit
// lane makes fp32 — see packed_position). Element types:
//   kF8E4M3: 1 byte each, with the checkpoint's 128x128 block scales re-indexed per panel and
//            128-wide k block ([panels, k_blocks]); the exact e4m3 values are kept, scales apply
//            after each block's accumulation (DeepGEMM's promotion).
//   kBF16:   2 bytes each.  kF32: 4 bytes each (F16 sources are widened exactly).
// An FP8 source whose scale blocks do not line up with the panels (a 128-block straddling two
// panels after a row slice at an odd offset) is packed as exact fp32 instead.
#pragma once

#include <cstdint>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/dtype.h"
#include "kernels/weight_view.h"

namespace dsinfer::kernels {

inline constexpr int64_t kPanelCols = 64;
inline constexpr int64_t kScaleBlock = 128;

struct PackedMatrix {
  DType dtype = DType::kF32;  // kF8E4M3, kBF16 or kF32
  int64_t n = 0, k = 0;
  int64_t panels = 0, k_blocks = 0;
  AlignedBuffer<uint8_t> data;  // [panels][k][64] elements
  std::vector<float> scales;    // kF8E4M3 only: [panels][k_blocks]

  size_t elem_bytes() const { return dtype_size(dtype); }
  size_t row_bytes() const { return size_t(kPanelCols) * elem_bytes(); }
  size_t panel_bytes() const { return size_t(k) * row_bytes(); }
  const uint8_t* panel(int64_t p) const { return data.data() + size_t(p) * panel_bytes(); }
  const float* panel_scales(int64_t p) const { return scales.empty() ? nullptr : scales.data() + p * k_blocks; }
  // Bytes a GEMM streams from this matrix (what a decode step reads).
  double bytes() const { return double(n) * double(k) * double(elem_bytes()) + double(scales.size()) * 4; }
  bool empty() const { return n == 0; }
};

// B = w: n = w.rows, k = w.cols.
PackedMatrix pack_matrix(const WeightView& w);
// B = w stacked row-wise (all parts share cols): n = sum of rows. Used to fuse gate and up.
PackedMatrix pack_matrix_stacked(const std::vector<WeightView>& parts);
// B = wᵀ: n = w.cols, k = w.rows (MLA's W_UK absorbed into the query).
PackedMatrix pack_matrix_transposed(const WeightView& w);

// Position of column c (0..63) inside a packed row, per element width.
int packed_position(DType dtype, int c);

// The exact value of B[row, col] (for tests and slow paths).
float packed_value(const PackedMatrix& b, int64_t row, int64_t col);

}  // namespace dsinfer::kernels
