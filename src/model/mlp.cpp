#include "model/mlp.h"

#include "kernels/activation.h"
#include "kernels/gemm.h"

namespace dsinfer::model {

PackedMlp PackedMlp::pack(const MlpWeights& w) {
  PackedMlp p;
  p.inter = w.gate.rows;
  p.dtype = w.gate.dtype;
  if (p.inter % kernels::kPanelCols == 0 && w.gate.dtype == w.up.dtype) {
    p.gate_up = kernels::pack_matrix_stacked({w.gate, w.up});
  } else {
    p.gate = kernels::pack_matrix(w.gate);
    p.up = kernels::pack_matrix(w.up);
  }
  p.down = kernels::pack_matrix(w.down);
  return p;
}

void mlp_forward(const PackedMlp& w, const float* x, int64_t m, int64_t ldx, float* out, int64_t ldo,
                 std::vector<float>& scratch, kernels::ActQuant act, FunctionRef<void()> between) {
  const int64_t inter = w.inter;
  if (scratch.size() < size_t(3 * m * inter)) scratch.resize(size_t(3 * m * inter));
  float* gate_up = scratch.data();              // {m, 2*inter}
  float* h = scratch.data() + 2 * m * inter;    // {m, inter}
  if (w.fused()) {
    kernels::linear(x, m, ldx, w.gate_up, gate_up, 2 * inter, act);
  } else {
    kernels::linear(x, m, ldx, w.gate, gate_up, 2 * inter, act);
    kernels::linear(x, m, ldx, w.up, gate_up + inter, 2 * inter, act);
  }
  between();
  kernels::silu_and_mul(gate_up, m, inter, h);
  kernels::linear(h, m, inter, w.down, out, ldo, act);
}

}  // namespace dsinfer::model
