// Linear layers over checkpoint-dtype weights with fp32 activations: y = x · Wᵀ (DeepGEMM's NT
// layout) and its transpose y = x · W (used by MLA's weight absorption, which multiplies by
// W_UK from the other side). Weights are dequantised row by row on the fly; each output element
// is one fixed-order dot product, so results are identical for any m (batch invariance).
#pragma once

#include <cstdint>

#include "kernels/weight_view.h"

namespace dsinfer::kernels {

// x [m, w.cols] (row stride ldx), y [m, w.rows] (row stride ldy).
void linear(const float* x, int64_t m, int64_t ldx, const WeightView& w, float* y, int64_t ldy);
inline void linear(const float* x, int64_t m, const WeightView& w, float* y) {
  linear(x, m, w.cols, w, y, w.rows);
}

// y [m, w.cols] = x [m, w.rows] · W. Reduction over rows in order 0..rows-1.
void linear_transposed(const float* x, int64_t m, int64_t ldx, const WeightView& w, float* y,
                       int64_t ldy);

}  // namespace dsinfer::kernels
