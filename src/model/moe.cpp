#include "model/moe.h"

#include <cstring>

#include "kernels/vec.h"
#include "model/mlp.h"

namespace dsinfer::model {

MoeLayer::MoeLayer(const ModelConfig& cfg, const MoeWeights& w, int layer, Precision precision)
    : w_(w), layer_(layer), precision_(precision) {
  if (w.shared) shared_ = PackedMlp::pack(*w.shared);
  params_.num_experts = cfg.n_routed_experts;
  params_.top_k = int(cfg.num_experts_per_tok);
  params_.num_groups = cfg.n_group;
  params_.topk_groups = cfg.topk_group;
  params_.scoring = cfg.scoring_func == ScoringFunc::kSoftmax ? kernels::GateScoring::kSoftmax
                                                              : kernels::GateScoring::kSigmoid;
  params_.method = cfg.topk_method == TopkMethod::kGreedy           ? kernels::GateTopk::kGreedy
                   : cfg.topk_method == TopkMethod::kGroupLimitedGreedy ? kernels::GateTopk::kGroupLimited
                                                                        : kernels::GateTopk::kNoauxTc;
  params_.normalize = cfg.norm_topk_prob;
  params_.scaling = float(cfg.routed_scaling_factor);
  params_.scale_normalized = cfg.architecture != "DeepseekV2ForCausalLM";
  params_.bias = w.bias.empty() ? nullptr : w.bias.data();
}

void MoeLayer::forward(const float* x, int64_t T, MoeExecutor& executor, RoutingObserver* observer, float* out) {
  const int64_t E = params_.num_experts, K = params_.top_k, hidden = int64_t(w_.router.size()) / E;
  logits_.resize(size_t(T * E));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) logits_[t * E + e] = kernels::dot(x + t * hidden, w_.router.data() + e * hidden, hidden);
  ids_.resize(size_t(T * K));
  weights_.resize(size_t(T * K));
  kernels::route_topk(logits_.data(), T, params_, ids_.data(), weights_.data());
  if (observer) observer->on_routing(layer_, ids_.data(), T, int(K));

  if (shared_) mlp_forward(*shared_, x, T, hidden, out, hidden, scratch_, activation_quant(precision_, shared_->dtype));
  else std::memset(out, 0, size_t(T * hidden) * sizeof(float));
  executor.run({layer_, x, ids_.data(), weights_.data(), T, int(K)}, out);
}

}  // namespace dsinfer::model
