#include "model/config.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "base/json_fields.h"
#include "base/read_file.h"
#include "kernels/rope.h"

namespace dsinfer::model {

using nlohmann::json;

const char* to_string(TopkMethod m) {
  switch (m) {
    case TopkMethod::kGreedy: return "greedy";
    case TopkMethod::kGroupLimitedGreedy: return "group_limited_greedy";
    case TopkMethod::kNoauxTc: return "noaux_tc";
  }
  return "?";
}

const char* to_string(ScoringFunc s) { return s == ScoringFunc::kSoftmax ? "softmax" : "sigmoid"; }

double ModelConfig::softmax_scale() const {
  double s = 1.0 / std::sqrt(double(qk_head_dim()));
  if (yarn && yarn->mscale_all_dim != 0) {
    double m = kernels::yarn_mscale(yarn->factor, yarn->mscale_all_dim);
    s *= m * m;
  }
  return s;
}

ModelConfig parse_config(const json& j, const std::string& origin) {
  // Hugging Face configs carry many keys dsinfer has no use for: unknown keys are ignored.
  FieldReader r(j, origin, "", {UnknownKeys::kIgnore, "field"});
  constexpr IntRange kPositive = IntRange::positive(), kNonNegative = IntRange::non_negative();
  // A float the forward divides by, takes a power or a logarithm of, or scales every activation
  // with: zero, negative, NaN or Inf would load fine and then yield NaN or empty output.
  constexpr NumberRange kPositiveNumber = NumberRange::positive();
  ModelConfig c;
  c.architecture = r.strings("architectures", 1)[0];
  if (c.architecture != "DeepseekV2ForCausalLM" && c.architecture != "DeepseekV3ForCausalLM")
    r.fail("architectures", "names '", c.architecture,
           "'; dsinfer supports DeepseekV2ForCausalLM and DeepseekV3ForCausalLM");
  c.model_type = r.string_or("model_type", "");

  // Token ids are int32 everywhere below.
  c.vocab_size = r.integer("vocab_size", IntRange::positive(INT32_MAX));
  c.hidden_size = r.integer("hidden_size", kPositive);
  c.intermediate_size = r.integer("intermediate_size", kPositive);
  c.num_hidden_layers = r.integer("num_hidden_layers", kPositive);
  c.num_attention_heads = r.integer("num_attention_heads", kPositive);
  c.num_key_value_heads = r.integer_or("num_key_value_heads", c.num_attention_heads);
  if (c.num_key_value_heads != c.num_attention_heads)
    r.fail("num_key_value_heads", "(", c.num_key_value_heads, ") must equal num_attention_heads for MLA");
  c.q_lora_rank = r.optional_integer("q_lora_rank", kPositive);
  c.kv_lora_rank = r.integer("kv_lora_rank", kPositive);
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim", kPositive);
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim", kPositive);
  if (c.qk_rope_head_dim % 2) r.fail("qk_rope_head_dim", "must be a positive even number, got ", c.qk_rope_head_dim);
  c.v_head_dim = r.integer("v_head_dim", kPositive);

  c.n_routed_experts = r.integer_or("n_routed_experts", 0, kNonNegative);
  c.n_shared_experts = r.integer_or("n_shared_experts", 0, kNonNegative);
  c.moe_intermediate_size = r.integer_or("moe_intermediate_size", 0);
  c.num_experts_per_tok = r.integer_or("num_experts_per_tok", 0);
  c.first_k_dense_replace = r.integer_or("first_k_dense_replace", 0, IntRange{0, c.num_hidden_layers});
  c.moe_layer_freq = r.integer_or("moe_layer_freq", 1, kPositive);
  c.n_group = r.integer_or("n_group", 1);
  c.topk_group = r.integer_or("topk_group", 1);
  c.norm_topk_prob = r.boolean_or("norm_topk_prob", false);
  c.routed_scaling_factor = r.number_or("routed_scaling_factor", 1.0, kPositiveNumber);

  bool v3 = c.architecture == "DeepseekV3ForCausalLM";
  c.topk_method = r.one_of_or("topk_method", v3 ? TopkMethod::kNoauxTc : TopkMethod::kGreedy,
                              {{"greedy", TopkMethod::kGreedy},
                               {"group_limited_greedy", TopkMethod::kGroupLimitedGreedy},
                               {"noaux_tc", TopkMethod::kNoauxTc}});
  c.scoring_func = r.one_of_or("scoring_func", v3 ? ScoringFunc::kSigmoid : ScoringFunc::kSoftmax,
                               {{"softmax", ScoringFunc::kSoftmax}, {"sigmoid", ScoringFunc::kSigmoid}});

  c.rope_theta = r.number_or("rope_theta", 10000.0, kPositiveNumber);
  c.max_position_embeddings = r.integer("max_position_embeddings", kPositive);
  c.rms_norm_eps = r.number_or("rms_norm_eps", 1e-6, kPositiveNumber);
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);
  // bos/eos_token_id may be an id or a list of ids; the first is the one generation stops on.
  auto token_id = [&](const char* key) -> int64_t {
    const json* v = r.optional_value(key);
    if (!v) return -1;
    const json& id = v->is_array() && !v->empty() ? (*v)[0] : *v;
    if (!id.is_number_integer()) r.fail(key, "must be a token id, got ", shown_json(*v));
    if (id.is_number_unsigned() ? id.get<uint64_t>() >= uint64_t(c.vocab_size) : id.get<int64_t>() >= c.vocab_size)
      r.fail(key, "is outside the vocabulary");
    return id.get<int64_t>();
  };
  c.bos_token_id = token_id("bos_token_id");
  c.eos_token_id = token_id("eos_token_id");
  c.num_nextn_predict_layers = r.integer_or("num_nextn_predict_layers", 0, kNonNegative);

  if (std::optional<FieldReader> rope = r.optional_reader("rope_scaling")) {
    const char* type_key = rope->has("type") ? "type" : "rope_type";
    std::string type = rope->string_or(type_key, "");
    if (type != "yarn") rope->fail(type_key, "is '", type, "'; only yarn is supported");
    YarnScaling y;
    y.factor = rope->number("factor", NumberRange::at_least(1));
    y.original_max_position_embeddings = rope->integer_or("original_max_position_embeddings", 4096, kPositive);
    y.beta_fast = rope->number_or("beta_fast", 32);
    y.beta_slow = rope->number_or("beta_slow", 1);
    y.mscale = rope->number_or("mscale", 1);
    y.mscale_all_dim = rope->number_or("mscale_all_dim", 0);
    if (!(y.beta_fast > y.beta_slow)) rope->fail("beta_fast", "must exceed 'beta_slow'");
    c.yarn = y;
  }

  if (std::optional<FieldReader> quant = r.optional_reader("quantization_config")) {
    QuantConfig q;
    std::string method_q = quant->string_or("quant_method", "");
    if (method_q != "fp8") quant->fail("quant_method", "is '", method_q, "'; only fp8 is supported");
    q.fmt = quant->string_or("fmt", "e4m3");
    if (q.fmt != "e4m3") quant->fail("fmt", "is '", q.fmt, "'; only e4m3 is supported");
    std::vector<int64_t> block = quant->integers("weight_block_size", kPositive);
    if (block.size() != 2) quant->fail("weight_block_size", "must be two positive integers");
    q.block_n = block[0];
    q.block_k = block[1];
    c.quant = q;
  }

  // Consistency between fields.
  if (c.n_routed_experts > 0) {
    if (c.moe_intermediate_size <= 0)
      r.fail("moe_intermediate_size", "must be positive for a MoE model, got ", c.moe_intermediate_size);
    if (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.n_routed_experts)
      r.fail("num_experts_per_tok", "must be in [1, n_routed_experts], got ", c.num_experts_per_tok);
    if (c.n_group <= 0 || c.n_routed_experts % c.n_group)
      r.fail("n_group", "(", c.n_group, ") must divide n_routed_experts (", c.n_routed_experts, ")");
    if (c.topk_group <= 0 || c.topk_group > c.n_group)
      r.fail("topk_group", "must be in [1, n_group], got ", c.topk_group);
    if (c.topk_method != TopkMethod::kGreedy &&
        c.topk_group * (c.n_routed_experts / c.n_group) < c.num_experts_per_tok)
      r.fail("topk_group", "(", c.topk_group, ") leaves fewer than num_experts_per_tok experts");
    if (c.topk_method == TopkMethod::kNoauxTc && c.n_routed_experts / c.n_group < 2)
      r.fail("n_group", "noaux_tc scores groups by their top-2 experts, needs >= 2 per group");
  }
  return c;
}

ModelConfig load_config(const std::string& path) {
  std::string text;
  try {
    text = read_regular_file(path, "model config");
  } catch (const Error& e) {
    fail(e.what(), " (a model directory needs config.json)");
  }
  return parse_config(parse_json(text, path), path);
}

json to_json(const ModelConfig& c) {
  json j = {
      {"architectures", {c.architecture}},
      {"model_type", c.model_type},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"moe_intermediate_size", c.moe_intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"first_k_dense_replace", c.first_k_dense_replace},
      {"moe_layer_freq", c.moe_layer_freq},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"q_lora_rank", c.q_lora_rank ? json(*c.q_lora_rank) : json(nullptr)},
      {"kv_lora_rank", c.kv_lora_rank},
      {"qk_nope_head_dim", c.qk_nope_head_dim},
      {"qk_rope_head_dim", c.qk_rope_head_dim},
      {"v_head_dim", c.v_head_dim},
      {"n_routed_experts", c.n_routed_experts},
      {"n_shared_experts", c.n_shared_experts},
      {"num_experts_per_tok", c.num_experts_per_tok},
      {"n_group", c.n_group},
      {"topk_group", c.topk_group},
      {"topk_method", to_string(c.topk_method)},
      {"scoring_func", to_string(c.scoring_func)},
      {"norm_topk_prob", c.norm_topk_prob},
      {"routed_scaling_factor", c.routed_scaling_factor},
      {"rope_theta", c.rope_theta},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"bos_token_id", c.bos_token_id},
      {"eos_token_id", c.eos_token_id},
      {"num_nextn_predict_layers", c.num_nextn_predict_layers},
      {"hidden_act", "silu"},
      {"attention_bias", false},
      {"torch_dtype", "bfloat16"},
  };
  if (c.yarn)
    j["rope_scaling"] = {{"type", "yarn"},
                         {"factor", c.yarn->factor},
                         {"original_max_position_embeddings", c.yarn->original_max_position_embeddings},
                         {"beta_fast", c.yarn->beta_fast},
                         {"beta_slow", c.yarn->beta_slow},
                         {"mscale", c.yarn->mscale},
                         {"mscale_all_dim", c.yarn->mscale_all_dim}};
  else
    j["rope_scaling"] = nullptr;
  if (c.quant)
    j["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", c.quant->fmt},
                                {"activation_scheme", "dynamic"},
                                {"weight_block_size", {c.quant->block_n, c.quant->block_k}}};
  return j;
}

}  // namespace dsinfer::model
