#include "model/presets.h"

#include "base/error.h"

namespace dsinfer::model {

namespace {

// DeepSeek-V3's published rope scaling (config.json of deepseek-ai/DeepSeek-V3).
YarnScaling v3_yarn() {
  YarnScaling y;
  y.factor = 40;
  y.original_max_position_embeddings = 4096;
  y.beta_fast = 32;
  y.beta_slow = 1;
  y.mscale = 1.0;
  y.mscale_all_dim = 1.0;
  return y;
}

ModelConfig v3_base() {
  ModelConfig c;
  c.architecture = "DeepseekV3ForCausalLM";
  c.model_type = "deepseek_v3";
  c.vocab_size = 129280;  // the DeepSeek-V3 tokenizer's padded vocabulary
  c.topk_method = TopkMethod::kNoauxTc;
  c.scoring_func = ScoringFunc::kSigmoid;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  c.rope_theta = 10000;
  c.yarn = v3_yarn();
  c.max_position_embeddings = 163840;
  c.rms_norm_eps = 1e-6;
  c.bos_token_id = 0;
  c.eos_token_id = 1;
  // One MTP module, as V3 ships (model.layers.{num_hidden_layers}), in every preset, so loading
  // it and speculative decoding with it are tested on each.
  c.num_nextn_predict_layers = 1;
  return c;
}

}  // namespace

std::vector<std::string> preset_names() { return {"tiny-v3", "tiny-v2lite", "tiny-mla576", "bench-v3-small"}; }

ModelConfig preset_config(const std::string& name) {
  ModelConfig c = v3_base();
  if (name == "tiny-v3") {
    // Dims straddle 128-wide FP8 blocks (176, 192, 320) so partial edge blocks are exercised.
    c.hidden_size = 64;
    c.num_hidden_layers = 3;
    c.first_k_dense_replace = 1;
    c.intermediate_size = 320;
    c.moe_intermediate_size = 96;
    c.n_routed_experts = 16;
    c.num_experts_per_tok = 4;
    c.n_shared_experts = 1;
    c.n_group = 4;
    c.topk_group = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.q_lora_rank = 96;
    c.kv_lora_rank = 160;
    c.qk_nope_head_dim = 32;
    c.qk_rope_head_dim = 16;
    c.v_head_dim = 32;
  } else if (name == "tiny-v2lite") {
    // DeepSeek-V2-Lite's structure: no q LoRA, softmax greedy routing, two shared experts,
    // unnormalised weights, mscale 0.707.
    c.architecture = "DeepseekV2ForCausalLM";
    c.model_type = "deepseek_v2";
    c.hidden_size = 64;
    c.num_hidden_layers = 3;
    c.first_k_dense_replace = 1;
    c.intermediate_size = 192;
    c.moe_intermediate_size = 48;
    c.n_routed_experts = 8;
    c.num_experts_per_tok = 3;
    c.n_shared_experts = 2;
    c.n_group = 1;
    c.topk_group = 1;
    c.topk_method = TopkMethod::kGreedy;
    c.scoring_func = ScoringFunc::kSoftmax;
    c.norm_topk_prob = false;
    c.routed_scaling_factor = 1.0;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.q_lora_rank.reset();
    c.kv_lora_rank = 64;
    c.qk_nope_head_dim = 32;
    c.qk_rope_head_dim = 16;
    c.v_head_dim = 32;
    c.yarn->mscale = 0.707;
    c.yarn->mscale_all_dim = 0.707;
  } else if (name == "tiny-mla576") {
    // DeepSeek-V3's exact attention dims: a 576-wide latent row (512 + 64 rope).
    c.hidden_size = 256;
    c.num_hidden_layers = 2;
    c.first_k_dense_replace = 1;
    c.intermediate_size = 512;
    c.moe_intermediate_size = 128;
    c.n_routed_experts = 8;
    c.num_experts_per_tok = 2;
    c.n_shared_experts = 1;
    c.n_group = 2;
    c.topk_group = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.q_lora_rank = 192;
    c.kv_lora_rank = 512;
    c.qk_nope_head_dim = 128;
    c.qk_rope_head_dim = 64;
    c.v_head_dim = 128;
  } else if (name == "bench-v3-small") {
    c.hidden_size = 1024;
    c.num_hidden_layers = 12;
    c.first_k_dense_replace = 1;
    c.intermediate_size = 4096;
    c.moe_intermediate_size = 512;
    c.n_routed_experts = 64;
    c.num_experts_per_tok = 8;
    c.n_shared_experts = 1;
    c.n_group = 8;
    c.topk_group = 4;
    c.num_attention_heads = 16;
    c.num_key_value_heads = 16;
    c.q_lora_rank = 384;
    c.kv_lora_rank = 512;
    c.qk_nope_head_dim = 128;
    c.qk_rope_head_dim = 64;
    c.v_head_dim = 128;
  } else {
    std::string names;
    for (auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
    fail("unknown preset '", name, "' (choose one of: ", names, ")");
  }
  return c;
}

}  // namespace dsinfer::model
