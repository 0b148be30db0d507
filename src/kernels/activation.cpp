#include "kernels/activation.h"

#include <cmath>

namespace dsinfer::kernels {

void silu_and_mul(const float* gate_up, int64_t m, int64_t n, float* out) {
  for (int64_t i = 0; i < m; ++i) {
    const float* g = gate_up + i * 2 * n;
    const float* u = g + n;
    float* o = out + i * n;
    for (int64_t j = 0; j < n; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
  }
}

}  // namespace dsinfer::kernels
