// The MoE layer (DeepSeekMoE): the router picks top_k routed experts per token and weights them
// (kernels/routing.h holds the three gate policies); a MoeExecutor runs the routed experts;
// shared experts run on every token beside it. out = shared(x) + sum_k w_k expert_k(x).
#pragma once

#include <optional>
#include <vector>

#include "kernels/packed_matrix.h"
#include "kernels/routing.h"
#include "model/config.h"
#include "model/forward_options.h"
#include "model/mlp.h"
#include "model/moe_executor.h"
#include "model/weights.h"

namespace dsinfer::model {

class MoeLayer {
 public:
  // scratch: the shared expert's workspace, shared with the model's other layers.
  MoeLayer(const ModelConfig& cfg, const MoeWeights& w, int layer, Precision precision, std::vector<float>& scratch);

  void forward(const float* x, int64_t T, MoeExecutor& executor, RoutingObserver* observer, float* out);

 private:
  const MoeWeights& w_;
  int layer_;
  Precision precision_;
  std::optional<PackedMlp> shared_;
  kernels::PackedMatrix router_;  // fp32 [n_routed, hidden], packed so a batch's scores are one GEMM
  kernels::RoutingParams params_;
  kernels::RoutingScratch routing_scratch_;
  std::vector<float> logits_, weights_;
  std::vector<float>& scratch_;
  std::vector<int32_t> ids_;
};

}  // namespace dsinfer::model
