// RMSNorm: y = x / sqrt(mean(x^2) + eps) * weight, row by row.
#pragma once

#include <cstdint>

namespace dsinfer::kernels {

// x [m, n] with row stride ldx; y [m, n] with row stride ldy (may alias x when strides match).
void rmsnorm(const float* x, int64_t m, int64_t n, int64_t ldx, const float* weight, float eps,
             float* y, int64_t ldy);

}  // namespace dsinfer::kernels
