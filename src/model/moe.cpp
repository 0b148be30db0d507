#include "model/moe.h"

#include <cstring>

#include "base/profile.h"
#include "base/scratch.h"
#include "kernels/gemm.h"
#include "kernels/weight_view.h"
#include "model/mlp.h"

namespace dsinfer::model {

MoeLayer::MoeLayer(const ModelConfig& cfg, const MoeWeights& w, int layer, Precision precision,
                   std::vector<float>& scratch)
    : w_(w), layer_(layer), precision_(precision), scratch_(scratch) {
  if (w.shared) shared_ = PackedMlp::pack(*w.shared);
  kernels::WeightView router;
  router.dtype = DType::kF32;
  router.data = w.router.data();
  router.rows = cfg.n_routed_experts;
  router.cols = cfg.hidden_size;
  router_ = kernels::pack_matrix(router);
  params_.num_experts = cfg.n_routed_experts;
  params_.top_k = int(cfg.num_experts_per_tok);
  params_.num_groups = cfg.n_group;
  params_.topk_groups = cfg.topk_group;
  params_.scoring = cfg.scoring_func;
  params_.method = cfg.topk_method;
  params_.normalize = cfg.norm_topk_prob;
  params_.scaling = float(cfg.routed_scaling_factor);
  params_.scale_normalized = cfg.scales_normalized_gates();
  params_.bias = w.bias.empty() ? nullptr : w.bias.data();
}

// x [T, D] -> the chosen experts [T, K] of E and their weights, sent on their way.
void MoeLayer::route_and_dispatch(const float* x, int64_t T, int64_t first_token, int mb, MoeExecutor& executor,
                                  RoutingObserver* observer) {
  const int64_t E = params_.num_experts, K = params_.top_k, hidden = int64_t(w_.router.size()) / E;
  std::vector<int32_t>& ids = ids_[size_t(mb)];
  std::vector<float>& weights = weights_[size_t(mb)];
  {
    ProfileScope scope("moe.route");
    // Scores in fp32 (as DeepSeek computes them), whatever the precision of the rest.
    grow(logits_, T * E);  // router logits [T, E]
    kernels::gemm_f32_nt(x, hidden, nullptr, 0, T, router_, logits_.data(), E);
    grow(ids, T * K);      // chosen experts [T, K]
    grow(weights, T * K);  // their gate weights [T, K]
    kernels::route_topk(logits_.data(), T, params_, ids.data(), weights.data(), routing_scratch_);
  }
  if (observer) observer->on_routing(layer_, ids.data(), T, int(K));
  ProfileScope scope("moe.dispatch");
  executor.begin({layer_, mb, first_token, x, ids.data(), weights.data(), T, int(K)});
}

void MoeLayer::shared(const float* x, int64_t T, MoeExecutor& executor, float* out) {
  ProfileScope scope("moe.shared");
  const int64_t hidden = int64_t(w_.router.size()) / params_.num_experts;
  // out [T, D] = shared experts(x), or 0; the routed experts add to it.
  if (shared_)
    mlp_forward(*shared_, x, T, hidden, out, hidden, scratch_, activation_quant(precision_),
                [&] { executor.progress(); });
  else
    std::memset(out, 0, size_t(T * hidden) * sizeof(float));
  executor.progress();
}

}  // namespace dsinfer::model
