// CostModel: the time one GPU spends on each block of a DeepSeek-V2/V3 layer, from FLOPs and
// bytes moved. A kernel's time is a soft roofline, sqrt(t_compute^2 + t_memory^2), where
// t_compute = FLOPs / (peak * compute fraction) and t_memory = bytes / (HBM * memory fraction);
// the fractions are what published kernels reach (data/hardware.json, "kernels"). The soft
// form matters near the ridge, where real kernels are neither purely compute- nor memory-bound;
// a GEMM's output store comes after its main loop and is added on top.
// Weights are in checkpoint precision: FP8 (1 byte, FP8 tensor cores) when the config has a
// quantization_config, else BF16. The attention core, the gate, the LM head and MLA's absorbed
// per-head matrices run in BF16, as in DeepSeek-V3's recipe.
#pragma once

#include "model/config.h"
#include "plan/hardware.h"

namespace dsinfer::plan {

struct OpCost {
  double seconds = 0;
  double flops = 0;
  double bytes = 0;
  OpCost& operator+=(const OpCost& o) {
    seconds += o.seconds;
    flops += o.flops;
    bytes += o.bytes;
    return *this;
  }
};
inline OpCost operator+(OpCost a, const OpCost& b) { return a += b; }

// sqrt((flops/flop_rate)^2 + (bytes/byte_rate)^2).
double soft_roofline(double flops, double flop_rate, double bytes, double byte_rate);

class CostModel {
 public:
  CostModel(const model::ModelConfig& config, const HardwareProfile& hw, const KernelEfficiency& eff);

  // [m, k] x [k, n] with weights in checkpoint precision; activations in FP8 when weights are.
  OpCost gemm(double m, double n, double k) const;
  // `groups` weight matrices of [k, n], `rows` input rows spread over them (DeepGEMM's grouped
  // layouts); every group's weights are read once.
  OpCost grouped_gemm(double groups, double rows, double n, double k) const;
  OpCost bf16_gemm(double m, double n, double k) const;
  OpCost elementwise(double bytes) const;

  // MLA, non-absorbed (prefill): projections of the computed tokens, plus K/V decompression of
  // `cached_tokens` whose latent came from the context cache.
  OpCost mla_prefill_projections(double tokens, double cached_tokens) const;
  // Causal attention of `tokens` queries over `mean_context` keys each.
  OpCost mla_prefill_attention(double tokens, double mean_context) const;
  // MLA, absorbed (decode): q/kv down-projections, q up-projection and W_UK folded into q.
  OpCost mla_decode_pre(double query_tokens) const;
  // Attention over the latent cache (FlashMLA): each request reads its kv_len latents once for
  // all its queries.
  OpCost mla_decode_attention(double requests, double queries_per_request, double kv_len) const;
  // W_UV and o_proj.
  OpCost mla_decode_post(double query_tokens) const;

  OpCost dense_mlp(double tokens) const;
  OpCost shared_experts(double tokens) const;
  // `pairs` (token, expert) rows over `local_experts` experts.
  OpCost routed_experts(double pairs, double local_experts) const;
  OpCost gate(double tokens) const;
  // Per layer: RMSNorms, residual adds, FP8 casts of GEMM inputs, RoPE.
  OpCost layer_elementwise(double tokens) const;
  // Per (token, expert) pair: SiLU*up and its cast; `permute` adds the copy into DeepGEMM's
  // contiguous layout that normal-mode dispatch needs.
  OpCost expert_elementwise(double pairs, bool permute) const;
  OpCost lm_head(double rows) const;
  // MTP module's own work besides its decoder layer: two norms and eh_proj (2H -> H).
  OpCost mtp_projection(double tokens) const;

  int num_layers() const;
  int num_moe_layers() const;
  bool has_mtp() const;
  bool has_moe() const;
  // Bytes of weights resident on one GPU with DP attention and `local_experts` routed experts.
  double weight_bytes_per_gpu(double local_experts, bool with_mtp) const;
  // Latent KV cache bytes per token over all layers (BF16, as FlashMLA reads it).
  double kv_bytes_per_token(bool with_mtp) const;
  double attention_params() const;  // per layer
  double expert_params() const;     // one routed expert
  double weight_bytes_per_param() const { return wbytes_; }
  const model::ModelConfig& config() const { return c_; }
  const HardwareProfile& hardware() const { return hw_; }

 private:
  double gemm_flop_rate() const;

  const model::ModelConfig& c_;
  const HardwareProfile& hw_;
  const KernelEfficiency& eff_;
  double wbytes_;  // bytes per weight: 1 for FP8 checkpoints, 2 for BF16
};

// Model FLOPs of one forward pass, from the same ops the simulators compose (no hardware in
// them): a single prompt of `tokens` new tokens with nothing cached (non-absorbed MLA, causal,
// logits for the last token only), and a decode step of `batch` sequences at context `ctx`
// (absorbed MLA over the latent cache, logits for every row). Benchmarks divide by these.
double prefill_flops(const model::ModelConfig& c, double tokens);
double decode_step_flops(const model::ModelConfig& c, double batch, double ctx);

}  // namespace dsinfer::plan
