// LocalMoe: the MoeExecutor that runs every routed expert in this process with the contiguous
// grouped GEMM (DeepGEMM's layout, as DeepEP's normal dispatch produces it): the (token, slot)
// pairs are sorted by expert into one [rows, hidden] matrix with a per-row expert index, gate and
// up run as one grouped GEMM over all experts, then silu-and-mul, then down as a second grouped
// GEMM. Each token's expert outputs are summed in top-k slot order — the same order whatever else
// is in the batch, and every GEMM row is computed independently of its neighbours, so results
// are batch invariant. Expert weights are repacked once (prepare(), or on first use).
#pragma once

#include <functional>
#include <vector>

#include "model/forward_options.h"
#include "model/mlp.h"
#include "model/moe_executor.h"
#include "model/weights.h"

namespace dsinfer::model {

class LocalMoe : public MoeExecutor {
 public:
  explicit LocalMoe(const ModelWeights& weights, Precision precision = Precision::kDefault)
      : weights_(weights), precision_(precision) {}
  void run(const MoeInput& in, float* out) override;
  // Repacks every MoE layer's experts now (DeepSeekModel does this at load when LocalMoe runs).
  // `packed`, when set, is called with each expert's weights as soon as they are packed (the
  // model gives back their checkpoint pages there, so experts are never resident twice).
  void prepare(const std::function<void(const MlpWeights&)>& packed = nullptr);

 private:
  struct Layer {
    std::vector<PackedMlp> experts;
    std::vector<const kernels::PackedMatrix*> gate_up, gate, up, down;
  };
  Layer& layer(int l, const std::function<void(const MlpWeights&)>& packed = nullptr);

  const ModelWeights& weights_;
  Precision precision_;
  std::vector<Layer> layers_;
  std::vector<float> a_, sa_, h_, act_, a2_, sa2_, y_, xq_, xsq_;
  std::vector<int32_t> group_, order_;
  std::vector<int64_t> row_of_slot_, offset_, cursor_;
};

}  // namespace dsinfer::model
