// ModelConfig: every config.json field of DeepseekV2ForCausalLM / DeepseekV3ForCausalLM that
// changes what inference computes, parsed and validated in one place. Values that are
// inconsistent with each other are rejected here, naming the field, so nothing downstream
// needs to re-check them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "kernels/routing.h"

namespace dsinfer::model {

using kernels::ScoringFunc;  // the router's enums, defined once (kernels/routing.h)
using kernels::TopkMethod;

const char* to_string(TopkMethod m);
const char* to_string(ScoringFunc s);

struct YarnScaling {
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32, beta_slow = 1;
  double mscale = 1.0, mscale_all_dim = 0.0;
};

struct QuantConfig {
  std::string fmt;  // "e4m3"
  int64_t block_n = 128, block_k = 128;
};

struct ModelConfig {
  std::string architecture;  // DeepseekV2ForCausalLM or DeepseekV3ForCausalLM
  // V3's gate multiplies the normalised top-k weights by routed_scaling_factor; V2's scales only
  // weights it did not normalise (the two agree for every published config).
  bool scales_normalized_gates() const { return architecture != "DeepseekV2ForCausalLM"; }
  std::string model_type;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;      // dense MLP
  int64_t moe_intermediate_size = 0;  // each routed and shared expert
  int64_t num_hidden_layers = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;

  std::optional<int64_t> q_lora_rank;  // empty: q_proj maps hidden straight to heads
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;

  int64_t n_routed_experts = 0;  // 0: no MoE layers
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t n_group = 1, topk_group = 1;
  TopkMethod topk_method = TopkMethod::kGreedy;
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;

  double rope_theta = 10000;
  std::optional<YarnScaling> yarn;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1, eos_token_id = -1;
  int64_t num_nextn_predict_layers = 0;
  std::optional<QuantConfig> quant;  // FP8 block-scaled weights

  // Derived.
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  int64_t latent_dim() const { return kv_lora_rank + qk_rope_head_dim; }  // cache width per token
  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  // Softmax scale: 1/sqrt(qk_head_dim), times mscale(factor, mscale_all_dim)^2 under YaRN.
  double softmax_scale() const;
};

// Throws Error naming the field on anything missing, mistyped or inconsistent; messages start
// with `origin` (load_config passes the file's path).
ModelConfig parse_config(const nlohmann::json& j, const std::string& origin = "config.json");
ModelConfig load_config(const std::string& path);
nlohmann::json to_json(const ModelConfig& c);

// YaRN's attention-magnitude correction: 0.1 * mscale * ln(scale) + 1 for scale > 1, else 1.

}  // namespace dsinfer::model
