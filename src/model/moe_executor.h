// The seam between the MoE layer and whoever runs the experts (DESIGN.md, "Model ⇄ MoE executor").
// The layer computes the gate (scores, group-limited top-k, bias-corrected choice, weights) and
// hands (x, topk_ids, topk_weights) to a MoeExecutor; it never loops over experts itself.
// LocalMoe runs every expert in this process; parallel::ExpertParallelMoe dispatches tokens to
// the ranks that own their experts and combines the results. Both see logical expert ids only.
// The call is split in three so computation can run while tokens are in flight:
//   begin(in)         an expert-parallel executor sends the tokens on their way (dispatch)
//   compute(mb)       waits for the tokens sent here, runs this rank's experts, sends the results
//                     back (combine)
//   finish(mb, out)   waits for the results and adds them to out
// The layer runs the shared experts between them. Two calls may be in flight at once, one per
// micro-batch (MoeInput::micro_batch): the model's two-micro-batch overlap runs one micro-batch's
// attention and experts while the other's dispatch or combine travels (model/micro_batches.h).
#pragma once

#include <cstdint>
#include <functional>

#include "model/weights.h"

namespace dsinfer::model {

// Told the routing decision of every MoE layer in every step: the load statistics that EPLB
// rebalances by (parallel::ExpertLoadRecorder implements it). Called from the forward pass, so
// implementations must be cheap and must not throw.
class RoutingObserver {
 public:
  virtual ~RoutingObserver() = default;
  // topk_ids: [num_tokens, top_k] logical expert ids of layer `layer` (the model's layer index).
  virtual void on_routing(int layer, const int32_t* topk_ids, int64_t num_tokens, int top_k) = 0;
  // One forward step has finished (all layers reported).
  virtual void on_step_end() {}
};

struct MoeInput {
  int layer = 0;                        // model layer index
  int micro_batch = 0;                  // 0 or 1: which of the (at most) two calls in flight
  int64_t first_token = 0;              // index of x's first row in the step (replica choice)
  const float* x = nullptr;             // [num_tokens, hidden]
  const int32_t* topk_ids = nullptr;    // [num_tokens, top_k]
  const float* topk_weights = nullptr;  // [num_tokens, top_k], routed scaling already applied
  int64_t num_tokens = 0;               // may be 0: a rank with nothing to run still takes part
  int top_k = 0;
};

class MoeExecutor {
 public:
  static constexpr int kMaxMicroBatches = 2;
  virtual ~MoeExecutor() = default;
  // Starts the routed experts on `in`, whose arrays stay valid until finish() returns.
  virtual void begin(const MoeInput& in) = 0;
  // Runs the experts this executor holds on the tokens sent to it for `micro_batch` and sends the
  // results on their way. Called once between begin and finish.
  virtual void compute(int micro_batch) = 0;
  // out [num_tokens, hidden] += sum_k topk_weights[t,k] * expert_{topk_ids[t,k]}(x[t]), summed in
  // slot order k. Shared experts are not included: the layer runs them between the calls.
  virtual void finish(int micro_batch, float* out) = 0;
  // Called while other work runs (between the shared experts' GEMMs, between stages): an
  // expert-parallel executor moves its transfers on, since MPI progresses them only inside MPI
  // calls.
  virtual void progress() {}
  void run(const MoeInput& in, float* out) {
    begin(in);
    compute(in.micro_batch);
    finish(in.micro_batch, out);
  }
  // Packs the routed experts this executor computes (all of them, or a rank's). `packed` is
  // called with each one's checkpoint weights once packed, so the model can check them and give
  // their pages back; experts it does not compute are never touched.
  virtual void prepare(const ModelWeights& weights, const std::function<void(const MlpWeights&)>& packed) = 0;
};

}  // namespace dsinfer::model
