// LocalMoe: the MoeExecutor that runs every routed expert in this process. Tokens are grouped by
// expert (the contiguous layout a grouped GEMM consumes), each expert runs once over its rows,
// and each token's expert outputs are summed in top-k slot order — the same order whatever else
// is in the batch, so results are batch invariant.
#pragma once

#include <vector>

#include "model/moe_executor.h"
#include "model/weights.h"

namespace dsinfer::model {

class LocalMoe : public MoeExecutor {
 public:
  explicit LocalMoe(const ModelWeights& weights) : weights_(weights) {}
  void run(const MoeInput& in, float* out) override;

 private:
  const ModelWeights& weights_;
  std::vector<float> gathered_, expert_out_, slot_out_, scratch_;
  std::vector<int64_t> rows_;
};

}  // namespace dsinfer::model
