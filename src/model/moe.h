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

  // The layer in stages (the model runs them, one micro-batch or two interleaved: deepseek.cpp).
  // For micro-batch mb, whose rows are [first_token, first_token + T) of the step:
  //   route_and_dispatch   the gate, then executor.begin (the tokens leave)
  //   executor.compute(mb) this rank's experts
  //   shared               out = shared experts(x), or 0
  //   executor.finish      out += the routed experts' results
  // x must stay unchanged until finish.
  void route_and_dispatch(const float* x, int64_t T, int64_t first_token, int mb, MoeExecutor& executor,
                          RoutingObserver* observer);
  void shared(const float* x, int64_t T, MoeExecutor& executor, float* out);

 private:
  const MoeWeights& w_;
  int layer_;
  Precision precision_;
  std::optional<PackedMlp> shared_;
  kernels::PackedMatrix router_;  // fp32 [n_routed, hidden], packed so a batch's scores are one GEMM
  kernels::RoutingParams params_;
  kernels::RoutingScratch routing_scratch_;
  std::vector<float> logits_;
  std::vector<float>& scratch_;
  // The routing of each micro-batch in flight, read by the executor until its finish.
  std::vector<int32_t> ids_[MoeExecutor::kMaxMicroBatches];
  std::vector<float> weights_[MoeExecutor::kMaxMicroBatches];
};

}  // namespace dsinfer::model
