#include "model/weights.h"

#include <cstdlib>

#include "base/error.h"
#include "model/finite_check.h"

namespace dsinfer::model {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

class Loader {
 public:
  Loader(const Checkpoint& c, const ModelConfig& cfg) : ckpt_(c), cfg_(cfg) {}

  const TensorInfo& expect(const std::string& name, std::vector<int64_t> shape) {
    const TensorInfo& t = ckpt_.get(name);
    check(t.shape == shape, t.file, ": tensor ", name, " has shape ", t.shape_str(), " but config.json implies ",
          shape_str(shape));
    return t;
  }

  // A linear weight [rows, cols]: BF16/F16/F32, or F8_E4M3 with its weight_scale_inv.
  WeightView linear(const std::string& prefix, int64_t rows, int64_t cols) {
    const TensorInfo& t = expect(prefix + ".weight", {rows, cols});
    WeightView w;
    w.dtype = t.dtype;
    w.data = t.data;
    w.rows = rows;
    w.cols = cols;
    if (t.dtype == DType::kF8E4M3) {
      check(cfg_.quant.has_value(), t.file, ": tensor ", t.name,
            " is F8_E4M3 but config.json has no quantization_config");
      w.block_rows = cfg_.quant->block_n;
      w.block_cols = cfg_.quant->block_k;
      int64_t sr = (rows + w.block_rows - 1) / w.block_rows, sc = (cols + w.block_cols - 1) / w.block_cols;
      const TensorInfo& s = ckpt_.get(prefix + ".weight_scale_inv");
      check(s.dtype == DType::kF32, s.file, ": tensor ", s.name, " must be F32, is ", dtype_name(s.dtype));
      check(s.shape == std::vector<int64_t>{sr, sc}, s.file, ": tensor ", s.name, " has shape ", s.shape_str(),
            " but a ", rows, "x", cols, " weight in ", w.block_rows, "x", w.block_cols, " blocks needs ",
            shape_str({sr, sc}));
      w.scale_inv = reinterpret_cast<const float*>(s.data);
      w.scale_cols = sc;
    }
    return w;
  }

  // Embedding-like tables are never FP8 in DeepSeek's checkpoints.
  WeightView table(const std::string& name, int64_t rows, int64_t cols) {
    const TensorInfo& t = expect(name, {rows, cols});
    check(t.dtype != DType::kF8E4M3, t.file, ": tensor ", name, " must be BF16, F16 or F32, is F8_E4M3");
    WeightView w;
    w.dtype = t.dtype;
    w.data = t.data;
    w.rows = rows;
    w.cols = cols;
    return w;
  }

  // Small tensors converted to fp32 once.
  std::vector<float> vec(const std::string& name, std::vector<int64_t> shape) {
    const TensorInfo& t = expect(name, shape);
    check(t.dtype != DType::kF8E4M3, t.file, ": tensor ", name, " must be BF16, F16 or F32, is F8_E4M3");
    WeightView w{t.dtype, t.data, 1, t.numel()};
    std::vector<float> out(size_t(t.numel()));
    kernels::dequant_row(w, 0, out.data());
    // Small and copied once: always checked (the matrices are checked as they are packed).
    check_finite(out.data(), int64_t(out.size()), t.file + ": tensor " + name);
    return out;
  }

  MlpWeights mlp(const std::string& prefix, int64_t inter) {
    int64_t h = cfg_.hidden_size;
    return {linear(prefix + ".gate_proj", inter, h), linear(prefix + ".up_proj", inter, h),
            linear(prefix + ".down_proj", h, inter)};
  }

 private:
  const Checkpoint& ckpt_;
  const ModelConfig& cfg_;
};

}  // namespace

ModelWeights ModelWeights::load(const Checkpoint& ckpt, const ModelConfig& cfg, bool with_mtp) {
  Loader L(ckpt, cfg);
  ModelWeights w;
  const int64_t h = cfg.hidden_size, heads = cfg.num_attention_heads;
  w.embed = L.table("model.embed_tokens.weight", cfg.vocab_size, h);
  // One decoder block: the main model's layers, and the MTP module's block.
  auto layer = [&](int64_t i) {
    const std::string p = "model.layers." + std::to_string(i);
    LayerWeights lw;
    lw.input_norm = L.vec(p + ".input_layernorm.weight", {h});
    lw.post_attention_norm = L.vec(p + ".post_attention_layernorm.weight", {h});
    AttentionWeights& a = lw.attn;
    const int64_t qk = cfg.qk_head_dim();
    if (cfg.q_lora_rank) {
      a.q_a = L.linear(p + ".self_attn.q_a_proj", *cfg.q_lora_rank, h);
      a.q_a_norm = L.vec(p + ".self_attn.q_a_layernorm.weight", {*cfg.q_lora_rank});
      a.q = L.linear(p + ".self_attn.q_b_proj", heads * qk, *cfg.q_lora_rank);
    } else {
      a.q = L.linear(p + ".self_attn.q_proj", heads * qk, h);
    }
    a.kv_a = L.linear(p + ".self_attn.kv_a_proj_with_mqa", cfg.kv_lora_rank + cfg.qk_rope_head_dim, h);
    a.kv_a_norm = L.vec(p + ".self_attn.kv_a_layernorm.weight", {cfg.kv_lora_rank});
    a.kv_b = L.linear(p + ".self_attn.kv_b_proj", heads * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank);
    a.o = L.linear(p + ".self_attn.o_proj", h, heads * cfg.v_head_dim);
    lw.is_moe = cfg.is_moe_layer(i);
    if (lw.is_moe) {
      lw.moe.router = L.vec(p + ".mlp.gate.weight", {cfg.n_routed_experts, h});
      if (cfg.topk_method == TopkMethod::kNoauxTc)
        lw.moe.bias = L.vec(p + ".mlp.gate.e_score_correction_bias", {cfg.n_routed_experts});
      for (int64_t e = 0; e < cfg.n_routed_experts; ++e)
        lw.moe.experts.push_back(L.mlp(p + ".mlp.experts." + std::to_string(e), cfg.moe_intermediate_size));
      if (cfg.n_shared_experts > 0)
        lw.moe.shared = L.mlp(p + ".mlp.shared_experts", cfg.moe_intermediate_size * cfg.n_shared_experts);
    } else {
      lw.mlp = L.mlp(p + ".mlp", cfg.intermediate_size);
    }
    return lw;
  };
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) w.layers.push_back(layer(i));
  w.final_norm = L.vec("model.norm.weight", {h});
  if (cfg.tie_word_embeddings && !ckpt.find("lm_head.weight"))
    w.lm_head = w.embed;
  else
    w.lm_head = L.table("lm_head.weight", cfg.vocab_size, h);

  // Multi-token-prediction modules are stored as model.layers.{num_hidden_layers + k}. The first
  // is loaded when asked for (its block becomes layers[num_hidden_layers]); the rest are counted.
  const int64_t L0 = cfg.num_hidden_layers;
  if (with_mtp) {
    check(cfg.num_nextn_predict_layers >= 1, "config.json has num_nextn_predict_layers = 0: the checkpoint has no "
          "multi-token-prediction module to speculate with");
    const std::string p = "model.layers." + std::to_string(L0);
    MtpWeights m;
    m.enorm = L.vec(p + ".enorm.weight", {h});
    m.hnorm = L.vec(p + ".hnorm.weight", {h});
    m.eh_proj = L.linear(p + ".eh_proj", h, 2 * h);
    m.head_norm = L.vec(p + ".shared_head.norm.weight", {h});
    // V3 stores the embedding and the LM head again in the module; the paper shares them with the
    // main model, which is what runs. Their shapes are checked when present.
    if (ckpt.find(p + ".embed_tokens.weight")) L.table(p + ".embed_tokens.weight", cfg.vocab_size, h);
    if (ckpt.find(p + ".shared_head.head.weight")) L.table(p + ".shared_head.head.weight", cfg.vocab_size, h);
    w.mtp = std::move(m);
    w.layers.push_back(layer(L0));
  }
  for (auto& [name, info] : ckpt.tensors())
    if (name.rfind("model.layers.", 0) == 0) {
      int64_t layer_index = std::atoll(name.c_str() + 13);
      if (layer_index >= L0 + (with_mtp ? 1 : 0)) ++w.skipped_mtp_tensors;
    }
  return w;
}

double ModelWeights::bytes_per_token(const ModelConfig& cfg) const {
  auto wb = [](const WeightView& v) { return double(v.bytes() + v.scale_bytes()); };
  auto mb = [&](const MlpWeights& m) { return wb(m.gate) + wb(m.up) + wb(m.down); };
  double total = wb(lm_head);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {  // the main model's: MTP's step is costed apart
    const LayerWeights& l = layers[size_t(i)];
    const AttentionWeights& a = l.attn;
    total += (a.q_a ? wb(*a.q_a) : 0) + wb(a.q) + wb(a.kv_a) + wb(a.kv_b) + wb(a.o);
    if (l.is_moe) {
      total += double(l.moe.router.size()) * 4;
      if (l.moe.shared) total += mb(*l.moe.shared);
      total += mb(l.moe.experts[0]) * double(cfg.num_experts_per_tok);
    } else {
      total += mb(l.mlp);
    }
  }
  return total;
}

}  // namespace dsinfer::model
