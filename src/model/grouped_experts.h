// Routed experts computed together, as DeepGEMM's grouped GEMMs do: rows of many experts in one
// call, gate|up, then silu-and-mul, then down. Both executors use it — LocalMoe on every expert
// of the layer, the expert-parallel one on the experts its rank holds — so a (token, expert) row
// comes out with the same bits wherever it is computed: every GEMM row is reduced independently
// of the rows beside it, and the activations are quantised per row.
//
// The output rows are rounded to bf16 at serving precision: the expert's result as DeepSeek's
// combine carries it (BF16), so one process and an expert-parallel group sum the same values.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/packed_matrix.h"
#include "model/mlp.h"

namespace dsinfer::model {

// One layer's experts (all of them, or a rank's), packed, with the pointer tables the grouped
// GEMMs take.
struct PackedExperts {
  std::vector<PackedMlp> experts;
  std::vector<const kernels::PackedMatrix*> gate_up, gate, up, down;

  void add(PackedMlp e);
  bool empty() const { return experts.empty(); }
  int64_t size() const { return int64_t(experts.size()); }
  int64_t hidden() const { return experts[0].down.n; }
  int64_t inter() const { return experts[0].inter; }
};

class GroupedExperts {
 public:
  // Contiguous layout: a [S, hidden] rows as the GEMM reads them (act's format, exact values),
  // a_scales [S, k_blocks(hidden)] for FP8 rows (else null), group [S] the expert of each row
  // (index into `e`, rows of one expert adjacent). y [S, hidden] = expert(row).
  void contiguous(const PackedExperts& e, const float* a, const float* a_scales, int64_t S, const int32_t* group,
                  kernels::ActQuant act, float* y);
  // Masked layout: groups of up to m_max rows, a [G, m_max, hidden], counts [G], expert_of[G]
  // (index into `e`). y [G, m_max, hidden]; rows past a group's count are not written.
  void masked(const PackedExperts& e, const float* a, const float* a_scales, int64_t G, int64_t m_max,
              const int32_t* counts, const int32_t* expert_of, kernels::ActQuant act, float* y);

 private:
  std::vector<float> h_, act_, a2_, sa2_;
  std::vector<const kernels::PackedMatrix*> gu_, g_, u_, d_;
};

}  // namespace dsinfer::model
