#include "model/mlp.h"

#include "kernels/activation.h"
#include "kernels/linear.h"

namespace dsinfer::model {

void mlp_forward(const MlpWeights& w, const float* x, int64_t m, int64_t ldx, float* out, int64_t ldo,
                 std::vector<float>& scratch) {
  const int64_t inter = w.gate.rows;
  if (scratch.size() < size_t(3 * m * inter)) scratch.resize(size_t(3 * m * inter));
  float* gate_up = scratch.data();            // {m, 2*inter}
  float* act = scratch.data() + 2 * m * inter;  // {m, inter}
  kernels::linear(x, m, ldx, w.gate, gate_up, 2 * inter);
  kernels::linear(x, m, ldx, w.up, gate_up + inter, 2 * inter);
  kernels::silu_and_mul(gate_up, m, inter, act);
  kernels::linear(act, m, inter, w.down, out, ldo);
}

}  // namespace dsinfer::model
