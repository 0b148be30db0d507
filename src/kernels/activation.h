// SiLU-gated linear unit: out = silu(gate) * up, the activation of every DeepSeek MLP and expert.
#pragma once

#include <cstdint>

namespace dsinfer::kernels {

// gate_up [m, 2n]: gate in columns [0, n), up in [n, 2n). out [m, n].
void silu_and_mul(const float* gate_up, int64_t m, int64_t n, float* out);

}  // namespace dsinfer::kernels
