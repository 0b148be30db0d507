// WeightView: a [rows, cols] weight matrix in its checkpoint dtype (BF16, F16, F32 or FP8 E4M3
// with fp32 block scales), viewed without copying. Kernels dequantise it on the fly; this is the
// B operand of DeepGEMM's NT GEMMs (y = x · Wᵀ). For FP8, scale_inv holds one fp32 per
// block_rows x block_cols block, [ceil(rows0/block_rows), ceil(cols/block_cols)], where the
// dequantised weight is e4m3 value x scale (DeepSeek's `weight_scale_inv`).
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace dsinfer::kernels {

struct WeightView {
  DType dtype = DType::kBF16;
  const void* data = nullptr;  // points at row 0 of this view
  int64_t rows = 0, cols = 0;
  const float* scale_inv = nullptr;  // FP8 only: the full matrix's scale grid
  int64_t block_rows = 128, block_cols = 128;
  int64_t scale_cols = 0;  // columns of the scale grid
  int64_t row0 = 0;        // absolute row of row 0 in the full matrix (for scale lookup)

  // Rows [begin, begin + count) of this view, sharing its scales.
  WeightView slice_rows(int64_t begin, int64_t count) const {
    WeightView v = *this;
    v.data = static_cast<const uint8_t*>(data) + begin * cols * int64_t(dtype_size(dtype));
    v.rows = count;
    v.row0 = row0 + begin;
    return v;
  }
  float scale(int64_t row, int64_t col) const {
    return scale_inv[((row0 + row) / block_rows) * scale_cols + col / block_cols];
  }
  int64_t bytes() const { return rows * cols * int64_t(dtype_size(dtype)); }
  // Bytes of the scale-grid rows that cover `rows` weight rows (FP8; 0 without scales).
  int64_t scale_bytes() const {
    return scale_inv ? (rows + block_rows - 1) / block_rows * scale_cols * int64_t(sizeof(float)) : 0;
  }
};

// Writes row r of w, dequantised to fp32, into out[0, w.cols).
void dequant_row(const WeightView& w, int64_t r, float* out);

}  // namespace dsinfer::kernels
