#include "model/config.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
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

namespace {

// Typed field readers: a wrong type or a missing required key names the field.
const json& field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) fail("config.json: missing field '", key, "'");
  return *it;
}

int64_t get_int(const json& j, const char* key) {
  const json& v = field(j, key);
  if (!v.is_number_integer()) fail("config.json: field '", key, "' must be an integer, got ", v.dump());
  return v.get<int64_t>();
}

int64_t get_int_or(const json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : get_int(j, key);
}

double get_num(const json& j, const char* key) {
  const json& v = field(j, key);
  if (!v.is_number()) fail("config.json: field '", key, "' must be a number, got ", v.dump());
  return v.get<double>();
}

double get_num_or(const json& j, const char* key, double fallback) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : get_num(j, key);
}

bool get_bool_or(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail("config.json: field '", key, "' must be true or false, got ", it->dump());
  return it->get<bool>();
}

std::string get_str_or(const json& j, const char* key, const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail("config.json: field '", key, "' must be a string, got ", it->dump());
  return it->get<std::string>();
}

// eos_token_id may be an int or a list; the first id is the one generation stops on.
int64_t get_token_id(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return -1;
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int64_t>();
  if (it->is_number_integer()) return it->get<int64_t>();
  fail("config.json: field '", key, "' must be a token id, got ", it->dump());
}

void require_positive(int64_t v, const char* key) {
  if (v <= 0) fail("config.json: field '", key, "' must be positive, got ", v);
}

// A float field the forward divides by, takes a power or a logarithm of, or scales every
// activation with: zero, negative, NaN or Inf loads fine and then yields NaN or empty output.
// (JSON text has no NaN or Inf, but a json value built in code can hold them.)
void require_finite_positive(double v, const char* key) {
  if (!(std::isfinite(v) && v > 0)) fail("config.json: field '", key, "' must be a finite positive number, got ", v);
}

void require_finite(double v, const char* key) {
  if (!std::isfinite(v)) fail("config.json: field '", key, "' must be a finite number, got ", v);
}

}  // namespace

ModelConfig parse_config(const json& j) {
  if (!j.is_object()) fail("config.json: expected a JSON object at top level");
  ModelConfig c;
  const json& archs = field(j, "architectures");
  if (!archs.is_array() || archs.empty() || !archs[0].is_string())
    fail("config.json: field 'architectures' must be a non-empty list of names");
  c.architecture = archs[0].get<std::string>();
  if (c.architecture != "DeepseekV2ForCausalLM" && c.architecture != "DeepseekV3ForCausalLM")
    fail("config.json: field 'architectures' names '", c.architecture,
         "'; dsinfer supports DeepseekV2ForCausalLM and DeepseekV3ForCausalLM");
  c.model_type = get_str_or(j, "model_type", "");

  c.vocab_size = get_int(j, "vocab_size");
  c.hidden_size = get_int(j, "hidden_size");
  c.intermediate_size = get_int(j, "intermediate_size");
  c.num_hidden_layers = get_int(j, "num_hidden_layers");
  c.num_attention_heads = get_int(j, "num_attention_heads");
  c.num_key_value_heads = get_int_or(j, "num_key_value_heads", c.num_attention_heads);
  c.q_lora_rank = j.contains("q_lora_rank") && !j["q_lora_rank"].is_null()
                      ? std::optional<int64_t>(get_int(j, "q_lora_rank")) : std::nullopt;
  c.kv_lora_rank = get_int(j, "kv_lora_rank");
  c.qk_nope_head_dim = get_int(j, "qk_nope_head_dim");
  c.qk_rope_head_dim = get_int(j, "qk_rope_head_dim");
  c.v_head_dim = get_int(j, "v_head_dim");

  c.n_routed_experts = get_int_or(j, "n_routed_experts", 0);
  c.n_shared_experts = get_int_or(j, "n_shared_experts", 0);
  c.moe_intermediate_size = get_int_or(j, "moe_intermediate_size", 0);
  c.num_experts_per_tok = get_int_or(j, "num_experts_per_tok", 0);
  c.first_k_dense_replace = get_int_or(j, "first_k_dense_replace", 0);
  c.moe_layer_freq = get_int_or(j, "moe_layer_freq", 1);
  c.n_group = get_int_or(j, "n_group", 1);
  c.topk_group = get_int_or(j, "topk_group", 1);
  c.norm_topk_prob = get_bool_or(j, "norm_topk_prob", false);
  c.routed_scaling_factor = get_num_or(j, "routed_scaling_factor", 1.0);

  bool v3 = c.architecture == "DeepseekV3ForCausalLM";
  std::string method = get_str_or(j, "topk_method", v3 ? "noaux_tc" : "greedy");
  if (method == "greedy") c.topk_method = TopkMethod::kGreedy;
  else if (method == "group_limited_greedy") c.topk_method = TopkMethod::kGroupLimitedGreedy;
  else if (method == "noaux_tc") c.topk_method = TopkMethod::kNoauxTc;
  else fail("config.json: field 'topk_method' is '", method, "'; expected greedy, group_limited_greedy or noaux_tc");
  std::string scoring = get_str_or(j, "scoring_func", v3 ? "sigmoid" : "softmax");
  if (scoring == "softmax") c.scoring_func = ScoringFunc::kSoftmax;
  else if (scoring == "sigmoid") c.scoring_func = ScoringFunc::kSigmoid;
  else fail("config.json: field 'scoring_func' is '", scoring, "'; expected softmax or sigmoid");

  c.rope_theta = get_num_or(j, "rope_theta", 10000.0);
  c.max_position_embeddings = get_int(j, "max_position_embeddings");
  c.rms_norm_eps = get_num_or(j, "rms_norm_eps", 1e-6);
  c.tie_word_embeddings = get_bool_or(j, "tie_word_embeddings", false);
  c.bos_token_id = get_token_id(j, "bos_token_id");
  c.eos_token_id = get_token_id(j, "eos_token_id");
  c.num_nextn_predict_layers = get_int_or(j, "num_nextn_predict_layers", 0);

  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) fail("config.json: field 'rope_scaling' must be an object");
    std::string type = get_str_or(*it, "type", get_str_or(*it, "rope_type", ""));
    if (type != "yarn") fail("config.json: field 'rope_scaling.type' is '", type, "'; only yarn is supported");
    YarnScaling y;
    y.factor = get_num(*it, "factor");
    y.original_max_position_embeddings = get_int_or(*it, "original_max_position_embeddings", 4096);
    y.beta_fast = get_num_or(*it, "beta_fast", 32);
    y.beta_slow = get_num_or(*it, "beta_slow", 1);
    y.mscale = get_num_or(*it, "mscale", 1);
    y.mscale_all_dim = get_num_or(*it, "mscale_all_dim", 0);
    if (!(y.factor >= 1 && std::isfinite(y.factor)))
      fail("config.json: field 'rope_scaling.factor' must be a finite number >= 1, got ", y.factor);
    require_finite(y.beta_fast, "rope_scaling.beta_fast");
    require_finite(y.beta_slow, "rope_scaling.beta_slow");
    require_finite(y.mscale, "rope_scaling.mscale");
    require_finite(y.mscale_all_dim, "rope_scaling.mscale_all_dim");
    if (y.original_max_position_embeddings <= 0)
      fail("config.json: field 'rope_scaling.original_max_position_embeddings' must be positive");
    if (!(y.beta_fast > y.beta_slow))
      fail("config.json: field 'rope_scaling.beta_fast' must exceed 'beta_slow'");
    c.yarn = y;
  }

  if (auto it = j.find("quantization_config"); it != j.end() && !it->is_null()) {
    QuantConfig q;
    std::string method_q = get_str_or(*it, "quant_method", "");
    if (method_q != "fp8")
      fail("config.json: field 'quantization_config.quant_method' is '", method_q, "'; only fp8 is supported");
    q.fmt = get_str_or(*it, "fmt", "e4m3");
    if (q.fmt != "e4m3") fail("config.json: field 'quantization_config.fmt' is '", q.fmt, "'; only e4m3 is supported");
    const json& bs = field(*it, "weight_block_size");
    if (!bs.is_array() || bs.size() != 2 || !bs[0].is_number_integer() || !bs[1].is_number_integer() ||
        bs[0].get<int64_t>() <= 0 || bs[1].get<int64_t>() <= 0)
      fail("config.json: field 'quantization_config.weight_block_size' must be two positive integers");
    q.block_n = bs[0].get<int64_t>();
    q.block_k = bs[1].get<int64_t>();
    c.quant = q;
  }

  // Consistency.
  require_finite_positive(c.rms_norm_eps, "rms_norm_eps");
  require_finite_positive(c.rope_theta, "rope_theta");
  require_finite_positive(c.routed_scaling_factor, "routed_scaling_factor");
  require_positive(c.vocab_size, "vocab_size");
  require_positive(c.hidden_size, "hidden_size");
  require_positive(c.intermediate_size, "intermediate_size");
  require_positive(c.num_hidden_layers, "num_hidden_layers");
  require_positive(c.num_attention_heads, "num_attention_heads");
  require_positive(c.kv_lora_rank, "kv_lora_rank");
  require_positive(c.qk_nope_head_dim, "qk_nope_head_dim");
  require_positive(c.v_head_dim, "v_head_dim");
  require_positive(c.max_position_embeddings, "max_position_embeddings");
  require_positive(c.moe_layer_freq, "moe_layer_freq");
  if (c.qk_rope_head_dim <= 0 || c.qk_rope_head_dim % 2)
    fail("config.json: field 'qk_rope_head_dim' must be a positive even number, got ", c.qk_rope_head_dim);
  if (c.q_lora_rank && *c.q_lora_rank <= 0)
    fail("config.json: field 'q_lora_rank' must be positive or null, got ", *c.q_lora_rank);
  if (c.first_k_dense_replace < 0 || c.first_k_dense_replace > c.num_hidden_layers)
    fail("config.json: field 'first_k_dense_replace' must be in [0, num_hidden_layers], got ", c.first_k_dense_replace);
  if (c.n_routed_experts < 0) fail("config.json: field 'n_routed_experts' must not be negative");
  if (c.n_routed_experts > 0) {
    require_positive(c.moe_intermediate_size, "moe_intermediate_size");
    if (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.n_routed_experts)
      fail("config.json: field 'num_experts_per_tok' must be in [1, n_routed_experts], got ", c.num_experts_per_tok);
    if (c.n_shared_experts < 0) fail("config.json: field 'n_shared_experts' must not be negative");
    if (c.n_group <= 0 || c.n_routed_experts % c.n_group)
      fail("config.json: field 'n_group' (", c.n_group, ") must divide n_routed_experts (", c.n_routed_experts, ")");
    if (c.topk_group <= 0 || c.topk_group > c.n_group)
      fail("config.json: field 'topk_group' must be in [1, n_group], got ", c.topk_group);
    if (c.topk_method != TopkMethod::kGreedy &&
        c.topk_group * (c.n_routed_experts / c.n_group) < c.num_experts_per_tok)
      fail("config.json: field 'topk_group' (", c.topk_group, ") leaves fewer than num_experts_per_tok experts");
    if (c.topk_method == TopkMethod::kNoauxTc && c.n_routed_experts / c.n_group < 2)
      fail("config.json: field 'n_group': noaux_tc scores groups by their top-2 experts, needs >= 2 per group");
  }
  if (c.num_key_value_heads != c.num_attention_heads)
    fail("config.json: field 'num_key_value_heads' (", c.num_key_value_heads,
         ") must equal num_attention_heads for MLA");
  if (c.vocab_size > INT32_MAX) fail("config.json: field 'vocab_size' is too large");
  if (c.eos_token_id >= c.vocab_size) fail("config.json: field 'eos_token_id' is outside the vocabulary");
  if (c.bos_token_id >= c.vocab_size) fail("config.json: field 'bos_token_id' is outside the vocabulary");
  if (c.num_nextn_predict_layers < 0) fail("config.json: field 'num_nextn_predict_layers' must not be negative");
  return c;
}

ModelConfig load_config(const std::string& path) {
  std::string text;
  try {
    text = read_regular_file(path, "model config");
  } catch (const Error& e) {
    fail(e.what(), " (a model directory needs config.json)");
  }
  json j = parse_json(text, path);
  try {
    return parse_config(j);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
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
