// LocalMoe: the MoeExecutor that runs every routed expert in this process with the contiguous
// grouped GEMM (DeepGEMM's layout, as DeepEP's normal dispatch produces it): the (token, slot)
// pairs are sorted by expert into one [rows, hidden] matrix with a per-row expert index and run
// through GroupedExperts. Each token's expert outputs are summed in top-k slot order — the same
// order whatever else is in the batch, and every GEMM row is computed independently of its
// neighbours, so results are batch invariant, and equal bit for bit to an expert-parallel group's.
#pragma once

#include <functional>
#include <vector>

#include "model/forward_options.h"
#include "model/grouped_experts.h"
#include "model/moe_executor.h"
#include "model/weights.h"

namespace dsinfer::model {

class LocalMoe : public MoeExecutor {
 public:
  explicit LocalMoe(const ModelWeights& weights, Precision precision = Precision::kDefault,
                    ExpertActivations activations = ExpertActivations::kBf16)
      : weights_(weights), precision_(precision), activations_(activations) {}
  void begin(const MoeInput& in) override { calls_[size_t(in.micro_batch)].in = in; }
  // Runs the experts on every (token, slot) of the micro-batch; finish adds them up.
  void compute(int micro_batch) override;
  void finish(int micro_batch, float* out) override;
  // Repacks every MoE layer's experts now (DeepSeekModel does this at load; otherwise on first use).
  void prepare(const ModelWeights& weights, const std::function<void(const MlpWeights&)>& packed) override;

 private:
  PackedExperts& layer(int l, const std::function<void(const MlpWeights&)>& packed = nullptr);

  const ModelWeights& weights_;
  Precision precision_;
  ExpertActivations activations_;
  // One call per micro-batch: its input, and its expert outputs until finish adds them up.
  struct Call {
    MoeInput in;
    std::vector<float> y;                // expert outputs [S, D]
    std::vector<int64_t> row_of_slot;    // (token, slot) -> row of y [S]
  };
  Call calls_[kMaxMicroBatches];
  std::vector<PackedExperts> layers_;
  GroupedExperts experts_;
  std::vector<float> a_, sa_, xq_, xsq_;
  std::vector<int32_t> group_, order_;
  std::vector<int64_t> offset_, cursor_;
};

}  // namespace dsinfer::model
