#include "plan/cost_model.h"

#include <cmath>

namespace dsinfer::plan {

namespace {
constexpr double kBf16 = 2;
constexpr double kScaleBlock = 128;  // FP8 activations carry one float scale per 128 values
constexpr double kFloat = 4;
}  // namespace

double soft_roofline(double flops, double flop_rate, double bytes, double byte_rate) {
  double tc = flops / flop_rate, tm = bytes / byte_rate;
  return std::sqrt(tc * tc + tm * tm);
}

namespace {

// A GEMM tile's main loop overlaps its tensor-core work with operand loads; its BF16 output is
// stored after the loop, so that traffic adds on top.
double gemm_seconds(double flops, double flop_rate, double in_bytes, double out_bytes, double byte_rate) {
  return soft_roofline(flops, flop_rate, in_bytes, byte_rate) + out_bytes / byte_rate;
}

}  // namespace

CostModel::CostModel(const model::ModelConfig& config, const HardwareProfile& hw, const KernelEfficiency& eff)
    : c_(config), hw_(hw), eff_(eff), wbytes_(config.quant ? 1.0 : 2.0) {}

double CostModel::gemm_flop_rate() const {
  return (c_.quant ? hw_.fp8_flops : hw_.bf16_flops) * eff_.gemm_compute;
}

OpCost CostModel::gemm(double m, double n, double k) const {
  if (m <= 0) return {};
  double act = c_.quant ? 1 + kFloat / kScaleBlock : kBf16;
  OpCost o;
  o.flops = 2 * m * n * k;
  double in = n * k * wbytes_ + m * k * act, out = m * n * kBf16;
  o.bytes = in + out;
  o.seconds = gemm_seconds(o.flops, gemm_flop_rate(), in, out, hw_.hbm_bandwidth * eff_.gemm_memory);
  return o;
}

OpCost CostModel::grouped_gemm(double groups, double rows, double n, double k) const {
  if (rows <= 0 || groups <= 0) return {};
  double act = c_.quant ? 1 + kFloat / kScaleBlock : kBf16;
  OpCost o;
  o.flops = 2 * rows * n * k;
  double in = groups * n * k * wbytes_ + rows * k * act, out = rows * n * kBf16;
  o.bytes = in + out;
  o.seconds = gemm_seconds(o.flops, gemm_flop_rate(), in, out, hw_.hbm_bandwidth * eff_.gemm_memory);
  return o;
}

OpCost CostModel::bf16_gemm(double m, double n, double k) const {
  if (m <= 0) return {};
  OpCost o;
  o.flops = 2 * m * n * k;
  double in = (n * k + m * k) * kBf16, out = m * n * kBf16;
  o.bytes = in + out;
  o.seconds = gemm_seconds(o.flops, hw_.bf16_flops * eff_.gemm_compute, in, out, hw_.hbm_bandwidth * eff_.gemm_memory);
  return o;
}

OpCost CostModel::elementwise(double bytes) const {
  OpCost o;
  o.bytes = bytes;
  o.seconds = bytes / (hw_.hbm_bandwidth * eff_.elementwise_memory);
  return o;
}

OpCost CostModel::mla_prefill_projections(double tokens, double cached_tokens) const {
  double h = double(c_.hidden_size), heads = double(c_.num_attention_heads);
  OpCost o;
  if (c_.q_lora_rank) {
    o += gemm(tokens, double(*c_.q_lora_rank), h);
    o += gemm(tokens, heads * double(c_.qk_head_dim()), double(*c_.q_lora_rank));
  } else {
    o += gemm(tokens, heads * double(c_.qk_head_dim()), h);
  }
  o += gemm(tokens, double(c_.latent_dim()), h);
  // kv_b turns every latent the queries attend to into per-head K (nope part) and V.
  o += gemm(tokens + cached_tokens, heads * double(c_.qk_nope_head_dim + c_.v_head_dim), double(c_.kv_lora_rank));
  o += gemm(tokens, h, heads * double(c_.v_head_dim));
  return o;
}

OpCost CostModel::mla_prefill_attention(double tokens, double mean_context) const {
  double heads = double(c_.num_attention_heads);
  OpCost o;
  o.flops = 2 * tokens * mean_context * heads * double(c_.qk_head_dim() + c_.v_head_dim);
  // Compute-bound at prefill lengths: K/V tiles are reused by every query block.
  o.seconds = o.flops / (hw_.bf16_flops * eff_.attention_prefill(mean_context));
  return o;
}

OpCost CostModel::mla_decode_pre(double q) const {
  double h = double(c_.hidden_size), heads = double(c_.num_attention_heads);
  OpCost o;
  if (c_.q_lora_rank) {
    o += gemm(q, double(*c_.q_lora_rank), h);
    o += gemm(q, heads * double(c_.qk_head_dim()), double(*c_.q_lora_rank));
  } else {
    o += gemm(q, heads * double(c_.qk_head_dim()), h);
  }
  o += gemm(q, double(c_.latent_dim()), h);
  // W_UK absorbed into q: per head [nope] x [nope, kv_lora], a batched BF16 matmul.
  OpCost uk;
  uk.flops = 2 * q * heads * double(c_.qk_nope_head_dim * c_.kv_lora_rank);
  uk.bytes = heads * double(c_.qk_nope_head_dim * c_.kv_lora_rank) * kBf16 +
             q * heads * double(c_.qk_nope_head_dim + c_.kv_lora_rank) * kBf16;
  uk.seconds = soft_roofline(uk.flops, hw_.bf16_flops * eff_.gemm_compute, uk.bytes, hw_.hbm_bandwidth * eff_.gemm_memory);
  return o + uk;
}

OpCost CostModel::mla_decode_attention(double requests, double queries_per_request, double kv_len) const {
  double heads = double(c_.num_attention_heads);
  OpCost o;
  double queries = requests * queries_per_request;
  // Scores over the whole latent (kv_lora + rope), output over the kv_lora part.
  o.flops = 2 * queries * heads * kv_len * double(c_.latent_dim() + c_.kv_lora_rank);
  o.bytes = requests * kv_len * double(c_.latent_dim()) * kBf16;
  o.seconds = soft_roofline(o.flops, hw_.bf16_flops * eff_.attention_decode_compute, o.bytes,
                            hw_.hbm_bandwidth * eff_.attention_decode_memory);
  return o;
}

OpCost CostModel::mla_decode_post(double q) const {
  double h = double(c_.hidden_size), heads = double(c_.num_attention_heads);
  OpCost uv;
  uv.flops = 2 * q * heads * double(c_.kv_lora_rank * c_.v_head_dim);
  uv.bytes = heads * double(c_.kv_lora_rank * c_.v_head_dim) * kBf16 +
             q * heads * double(c_.kv_lora_rank + c_.v_head_dim) * kBf16;
  uv.seconds = soft_roofline(uv.flops, hw_.bf16_flops * eff_.gemm_compute, uv.bytes, hw_.hbm_bandwidth * eff_.gemm_memory);
  return uv + gemm(q, h, heads * double(c_.v_head_dim));
}

OpCost CostModel::dense_mlp(double tokens) const {
  double h = double(c_.hidden_size), inter = double(c_.intermediate_size);
  return gemm(tokens, 2 * inter, h) + gemm(tokens, h, inter) + elementwise(tokens * inter * 5);
}

OpCost CostModel::shared_experts(double tokens) const {
  if (c_.n_shared_experts <= 0) return {};
  double h = double(c_.hidden_size), inter = double(c_.n_shared_experts * c_.moe_intermediate_size);
  return gemm(tokens, 2 * inter, h) + gemm(tokens, h, inter) + elementwise(tokens * inter * 5);
}

OpCost CostModel::routed_experts(double pairs, double local_experts) const {
  double h = double(c_.hidden_size), inter = double(c_.moe_intermediate_size);
  return grouped_gemm(local_experts, pairs, 2 * inter, h) + grouped_gemm(local_experts, pairs, h, inter);
}

OpCost CostModel::gate(double tokens) const {
  return bf16_gemm(tokens, double(c_.n_routed_experts), double(c_.hidden_size));
}

OpCost CostModel::layer_elementwise(double tokens) const {
  double h = double(c_.hidden_size), heads = double(c_.num_attention_heads);
  double q_lora = c_.q_lora_rank ? double(*c_.q_lora_rank) : 0;
  // Two RMSNorms with the residual add fused (read x and residual, write both): 4 x 2H each.
  double norms = 2 * 4 * h * kBf16;
  // BF16 -> FP8 cast of each GEMM input (read 2 bytes, write 1 + scale).
  double casts = c_.quant ? 3.0 * (h + q_lora + double(c_.kv_lora_rank) + heads * double(c_.v_head_dim)) : 0;
  // q_a/kv_a norms and RoPE on q and k.
  double small = (q_lora + double(c_.kv_lora_rank)) * 2 * kBf16 +
                 (heads + 1) * double(c_.qk_rope_head_dim) * 2 * kBf16;
  return elementwise(tokens * (norms + casts + small));
}

OpCost CostModel::expert_elementwise(double pairs, bool permute) const {
  double h = double(c_.hidden_size), inter = double(c_.moe_intermediate_size);
  double act = c_.quant ? 1 : kBf16;
  double per_pair = 5 * inter + (permute ? 2 * h * act : 0);
  return elementwise(pairs * per_pair);
}

OpCost CostModel::lm_head(double rows) const {
  return bf16_gemm(rows, double(c_.vocab_size), double(c_.hidden_size));
}

OpCost CostModel::mtp_projection(double tokens) const {
  double h = double(c_.hidden_size);
  return gemm(tokens, h, 2 * h) + elementwise(tokens * 2 * 4 * h * kBf16);
}

int CostModel::num_layers() const { return int(c_.num_hidden_layers); }

int CostModel::num_moe_layers() const {
  int n = 0;
  for (int64_t l = 0; l < c_.num_hidden_layers; ++l) n += c_.is_moe_layer(l) ? 1 : 0;
  return n;
}

bool CostModel::has_mtp() const { return c_.num_nextn_predict_layers > 0; }
bool CostModel::has_moe() const { return c_.n_routed_experts > 0 && num_moe_layers() > 0; }

double CostModel::attention_params() const {
  double h = double(c_.hidden_size), heads = double(c_.num_attention_heads);
  double p = 0;
  if (c_.q_lora_rank) p += h * double(*c_.q_lora_rank) + double(*c_.q_lora_rank) * heads * double(c_.qk_head_dim());
  else p += h * heads * double(c_.qk_head_dim());
  p += h * double(c_.latent_dim());
  p += double(c_.kv_lora_rank) * heads * double(c_.qk_nope_head_dim + c_.v_head_dim);
  p += heads * double(c_.v_head_dim) * h;
  return p;
}

double CostModel::expert_params() const { return 3.0 * double(c_.hidden_size * c_.moe_intermediate_size); }

double CostModel::weight_bytes_per_gpu(double local_experts, bool with_mtp) const {
  double h = double(c_.hidden_size);
  int moe = num_moe_layers(), dense = num_layers() - moe;
  int mtp = with_mtp && has_mtp() ? int(c_.num_nextn_predict_layers) : 0;
  double shared = double(c_.n_shared_experts) * expert_params();
  double bytes = (num_layers() + mtp) * attention_params() * wbytes_;
  bytes += dense * 3.0 * h * double(c_.intermediate_size) * wbytes_;
  bytes += (moe + mtp) * (shared + std::ceil(local_experts) * expert_params()) * wbytes_;
  bytes += (moe + mtp) * double(c_.n_routed_experts) * h * kBf16;  // gates
  bytes += mtp * 2 * h * h * wbytes_;                             // eh_proj
  bytes += (c_.tie_word_embeddings ? 1 : 2) * double(c_.vocab_size) * h * kBf16;
  return bytes;
}

double CostModel::kv_bytes_per_token(bool with_mtp) const {
  int mtp = with_mtp && has_mtp() ? int(c_.num_nextn_predict_layers) : 0;
  return double(c_.latent_dim()) * kBf16 * double(num_layers() + mtp);
}

namespace {

// A CostModel only asked for FLOPs: any positive rates will do (its seconds are not read).
CostModel flop_counter(const model::ModelConfig& c) {
  static const HardwareProfile unit = [] {
    HardwareProfile h;
    h.fp8_flops = h.bf16_flops = h.hbm_bandwidth = 1;
    return h;
  }();
  static const KernelEfficiency unit_eff = [] {
    KernelEfficiency e;
    e.gemm_compute = e.gemm_memory = e.attention_decode_compute = e.attention_decode_memory = 1;
    e.elementwise_memory = e.end_to_end = 1;
    e.attention_prefill_by_length = {{1, 1}};
    return e;
  }();
  return CostModel(c, unit, unit_eff);
}

}  // namespace

double prefill_flops(const model::ModelConfig& c, double tokens) {
  const CostModel cm = flop_counter(c);
  OpCost o = cm.lm_head(1);
  for (int l = 0; l < cm.num_layers(); ++l) {
    o += cm.mla_prefill_projections(tokens, 0) + cm.mla_prefill_attention(tokens, (tokens + 1) / 2);
    o += c.is_moe_layer(l) ? cm.gate(tokens) + cm.shared_experts(tokens) +
                                 cm.routed_experts(tokens * double(c.num_experts_per_tok), double(c.n_routed_experts))
                           : cm.dense_mlp(tokens);
  }
  return o.flops;
}

double decode_step_flops(const model::ModelConfig& c, double batch, double ctx) {
  const CostModel cm = flop_counter(c);
  OpCost o = cm.lm_head(batch);
  for (int l = 0; l < cm.num_layers(); ++l) {
    o += cm.mla_decode_pre(batch) + cm.mla_decode_attention(batch, 1, ctx) + cm.mla_decode_post(batch);
    o += c.is_moe_layer(l) ? cm.gate(batch) + cm.shared_experts(batch) +
                                 cm.routed_experts(batch * double(c.num_experts_per_tok), double(c.n_routed_experts))
                           : cm.dense_mlp(batch);
  }
  return o.flops;
}

}  // namespace dsinfer::plan
