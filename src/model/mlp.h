// The SiLU-gated MLP of dense layers, shared experts and each routed expert:
// down(silu(gate(x)) * up(x)).
#pragma once

#include <cstdint>
#include <vector>

#include "model/weights.h"

namespace dsinfer::model {

// x [m, hidden] (row stride ldx) -> out [m, hidden] (row stride ldo). `scratch` is grown as needed.
void mlp_forward(const MlpWeights& w, const float* x, int64_t m, int64_t ldx, float* out, int64_t ldo,
                 std::vector<float>& scratch);

}  // namespace dsinfer::model
