#include "kernels/norm.h"

#include <cmath>

#include "kernels/vec.h"

namespace dsinfer::kernels {

void rmsnorm(const float* x, int64_t m, int64_t n, int64_t ldx, const float* weight, float eps,
             float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * ldx;
    float* yi = y + i * ldy;
    float inv = 1.0f / std::sqrt(dot(xi, xi, n) / float(n) + eps);
    for (int64_t j = 0; j < n; ++j) yi[j] = xi[j] * inv * weight[j];
  }
}

}  // namespace dsinfer::kernels
