// Multi-head latent attention (DeepSeek-V2 §2.1) for one layer over a whole Batch.
//   q   = W_UQ · norm(W_DQ · h)           (or W_Q · h without q LoRA)   {T, heads, nope + rope}
//   c   = norm(W_DKV · h)[:kv_lora]         the latent, cached          {T, kv_lora}
//   k_r = rope(W_DKV · h)[kv_lora:]         the shared rope key, cached {T, rope}
// Non-absorbed (prefill): k_nope, v = W_UK · c, W_UV · c for every context token, then causal
// MHA (kernels::mla_prefill). Absorbed (decode): q_latent = W_UKᵀ q_nope per head, attention over
// [c | k_r] directly (kernels::mla_decode, the query groups of one size in one call, QueryGroup),
// then W_UV on the attended latent. Both compute the same function of the cached latents. The
// per-head absorption GEMMs run as one masked grouped GEMM over all heads.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/packed_matrix.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/forward_options.h"
#include "model/weights.h"

namespace dsinfer::model {

// Rows of one sequence at consecutive positions, attended over its latent cache in one call
// (mla_decode's s_q = size, as FlashMLA serves MTP's verify rows): a chunk of several tokens, or
// a decode step's token with its drafts, which the runner adds as single-token chunks of their
// own. The causal mask shows each row the keys its own decode step would see, and mla_decode
// computes every query row on its own, so each row's output is bit-identical to a step of its
// own (tests/kernels/mla_decode_test.cpp); the group reads the cache once instead of per row.
struct QueryGroup {
  int64_t row;   // its first row among the absorbed rows
  int64_t size;  // rows
  int32_t len;   // context length with all its rows
  const int32_t* table;
  bool rows_of_decodes;  // single-token decode chunks, which the next such row may extend
};

// Scratch of the attention layers, grown on demand and reused across steps. The layers of a
// model run one after another, so they share one: per layer, a 2,048-token prefill of
// bench-v3-small held ~3 GB of it and spent a fifth of its time faulting those pages in.
struct AttentionScratch {
  std::vector<float> q, qa, kv, attn, ctx, kvb, k, v, qabs, olat, heads_in, heads_out, part, lse, part_lse;
  std::vector<int32_t> tables, seqlens, counts;
  std::vector<int64_t> rows;
  std::vector<size_t> absorbed;  // sequences of the step attended in the absorbed form
  std::vector<QueryGroup> groups;
};

class MlaAttention {
 public:
  // workspace_bytes bounds the decompressed context a prefill chunk holds at once (the
  // non-absorbed form's K and V): longer contexts are attended tile by tile and merged.
  // scratch: shared with the model's other layers; it must outlive this layer.
  MlaAttention(const ModelConfig& cfg, const AttentionWeights& w, Precision precision, int64_t workspace_bytes,
               AttentionScratch& scratch);
  static constexpr int64_t kDefaultAttentionWorkspace = int64_t(256) << 20;
  int64_t context_tile() const { return context_tile_; }
  // Grows the (shared) scratch of the tiled long-context path for chunks of up to max_tokens.
  void reserve_chunk(int64_t max_tokens);

  // x: normed hidden states [T, hidden]; cos/sin: rope tables [T, rope/2]; out [T, hidden].
  void forward(const float* x, const Batch& batch, const kernels::LatentCacheView& cache, const float* cos,
               const float* sin, AttentionMode mode, float* out);

 private:
  void attend_absorbed(const Batch& batch, const std::vector<size_t>& seqs, const kernels::LatentCacheView& cache,
                       float* attn_out);
  // Group g's block table and length into slot `slot` of the scratch tables and seqlens.
  void fill_group_table(const QueryGroup& g, int64_t block_size, int64_t max_blocks, size_t slot);
  void attend_non_absorbed(const SequenceChunk& s, const kernels::LatentCacheView& cache, float* attn_out);
  // K [n, H, qk] and V [n, H, v] of context tokens [t0, t0 + n) into k_ and v_.
  void decompress(const SequenceChunk& s, const kernels::LatentCacheView& cache, int64_t t0, int64_t n);
  // out [H, n, w.n] = in [H, n, k] x each head's w, as one masked grouped GEMM.
  void heads_gemm(const float* in, int64_t n, int64_t k, const std::vector<const kernels::PackedMatrix*>& w_ptrs,
                  float* out);
  kernels::ActQuant act() const { return activation_quant(precision_); }

  const ModelConfig& cfg_;
  const AttentionWeights& w_;
  Precision precision_;
  int64_t context_tile_;  // tokens of context decompressed at once in the non-absorbed form
  kernels::PackedMatrix q_a_, q_proj_, kv_a_, kv_b_, o_;
  std::vector<kernels::PackedMatrix> uk_t_, uv_;  // per head: W_UKᵀ [kv_lora, nope], W_UV [v, kv_lora]
  std::vector<const kernels::PackedMatrix*> uk_t_ptr_, uv_ptr_;
  AttentionScratch& s_;
};

}  // namespace dsinfer::model
