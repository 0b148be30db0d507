// The SiLU-gated MLP of dense layers, shared experts and each routed expert:
// down(silu(gate(x)) * up(x)).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/function_ref.h"
#include "kernels/gemm.h"
#include "kernels/packed_matrix.h"
#include "model/weights.h"

namespace dsinfer::model {

// An MLP's weights repacked for the GEMM kernels at load time; gate and up are fused into one
// [2*inter, hidden] matrix (one pass over x, output already in silu_and_mul's layout) when the
// intermediate size is a whole number of 64-column panels.
struct PackedMlp {
  kernels::PackedMatrix gate_up;  // fused, or empty
  kernels::PackedMatrix gate, up;  // when not fused
  kernels::PackedMatrix down;
  int64_t inter = 0;
  DType dtype = DType::kBF16;  // the checkpoint dtype (chooses the activation format)

  static PackedMlp pack(const MlpWeights& w);
  bool fused() const { return !gate_up.empty(); }

  // Every byte buffer (the packed matrices, then their FP8 scales) in a fixed order: what an
  // expert-parallel rank sends to another, and checksums (parallel/online_eplb.h).
  std::vector<std::span<uint8_t>> buffers();
  std::vector<std::span<const uint8_t>> buffers() const;
  int64_t bytes() const;
  // The same shapes, zero-filled: where a copy is received.
  PackedMlp zeros_like() const;
  // A deep copy (PackedMatrix buffers move, they do not copy).
  PackedMlp copy() const;
};

// x [m, hidden] (row stride ldx) -> out [m, hidden] (row stride ldo). `scratch` is grown as needed.
// `between` runs between the GEMMs (the MoE layer moves expert-parallel transfers on there).
void mlp_forward(const PackedMlp& w, const float* x, int64_t m, int64_t ldx, float* out, int64_t ldo,
                 std::vector<float>& scratch, kernels::ActQuant act, FunctionRef<void()> between);
inline void mlp_forward(const PackedMlp& w, const float* x, int64_t m, int64_t ldx, float* out, int64_t ldo,
                        std::vector<float>& scratch, kernels::ActQuant act) {
  mlp_forward(w, x, m, ldx, out, ldo, scratch, act, [] {});
}

}  // namespace dsinfer::model
