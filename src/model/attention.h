// Multi-head latent attention (DeepSeek-V2 §2.1) for one layer over a whole Batch.
//   q   = W_UQ · norm(W_DQ · h)           (or W_Q · h without q LoRA)   {T, heads, nope + rope}
//   c   = norm(W_DKV · h)[:kv_lora]         the latent, cached          {T, kv_lora}
//   k_r = rope(W_DKV · h)[kv_lora:]         the shared rope key, cached {T, rope}
// Non-absorbed (prefill): k_nope, v = W_UK · c, W_UV · c for every context token, then causal
// MHA. Absorbed (decode): q_latent = W_UKᵀ q_nope per head, attention over [c | k_r] directly,
// then W_UV on the attended latent. Both compute the same function of the cached latents.
#pragma once

#include <cstdint>
#include <vector>

#include "model/batch.h"
#include "model/config.h"
#include "model/forward_options.h"
#include "model/weights.h"

namespace dsinfer::model {

class MlaAttention {
 public:
  MlaAttention(const ModelConfig& cfg, const AttentionWeights& w) : cfg_(cfg), w_(w) {}

  // x: normed hidden states [T, hidden]; cos/sin: rope tables [T, rope/2]; out [T, hidden].
  void forward(const float* x, const Batch& batch, const kernels::LatentCacheView& cache, const float* cos,
               const float* sin, AttentionMode mode, float* out);

 private:
  void attend_absorbed(const SequenceChunk& s, const kernels::LatentCacheView& cache, float* attn_out);
  void attend_non_absorbed(const SequenceChunk& s, const kernels::LatentCacheView& cache, float* attn_out);

  const ModelConfig& cfg_;
  const AttentionWeights& w_;
  // Scratch, grown on demand and reused across steps.
  std::vector<float> q_, qa_, kv_, attn_, ctx_, kvb_, k_, v_, qabs_, olat_;
};

}  // namespace dsinfer::model
