#include "model/attention.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "base/profile.h"
#include "base/scratch.h"

namespace dsinfer::model {

MlaAttention::MlaAttention(const ModelConfig& cfg, const AttentionWeights& w, Precision precision,
                           int64_t workspace_bytes, AttentionScratch& scratch)
    : cfg_(cfg),
      w_(w),
      precision_(precision),
      s_(scratch) {
  // Floats a context token costs in the non-absorbed form: its latent row, the kv_b output, K, V.
  const int64_t per_token = cfg.latent_dim() + cfg.num_attention_heads * (2 * cfg.qk_nope_head_dim +
                                                                          cfg.qk_rope_head_dim + 2 * cfg.v_head_dim);
  context_tile_ = std::max<int64_t>(64, workspace_bytes / (per_token * int64_t(sizeof(float))) / 64 * 64);
  const int64_t H = cfg.num_attention_heads, nope = cfg.qk_nope_head_dim, vd = cfg.v_head_dim;
  if (w.q_a) q_a_ = kernels::pack_matrix(*w.q_a);
  q_proj_ = kernels::pack_matrix(w.q);
  kv_a_ = kernels::pack_matrix(w.kv_a);
  kv_b_ = kernels::pack_matrix(w.kv_b);
  o_ = kernels::pack_matrix(w.o);
  for (int64_t h = 0; h < H; ++h) {
    uk_t_.push_back(kernels::pack_matrix_transposed(w.kv_b.slice_rows(h * (nope + vd), nope)));
    uv_.push_back(kernels::pack_matrix(w.kv_b.slice_rows(h * (nope + vd) + nope, vd)));
  }
  for (int64_t h = 0; h < H; ++h) {
    uk_t_ptr_.push_back(&uk_t_[size_t(h)]);
    uv_ptr_.push_back(&uv_[size_t(h)]);
  }
}

void MlaAttention::forward(const float* x, const Batch& batch, const kernels::LatentCacheView& cache,
                           const float* cos, const float* sin, AttentionMode mode, float* out) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg_.num_attention_heads, hidden = cfg_.hidden_size;
  const int64_t nope = cfg_.qk_nope_head_dim, rope = cfg_.qk_rope_head_dim, qk = nope + rope;
  const int64_t lora = cfg_.kv_lora_rank, half = rope / 2;
  const float eps = float(cfg_.rms_norm_eps);

  // Queries {T, H, qk}.
  ProfileScope proj_scope("attention.q_kv_proj");
  grow(s_.q, T * H * qk);
  if (w_.q_a) {
    const int64_t r = q_a_.n;
    grow(s_.qa, T * r);  // qa [T, q_lora]: the compressed query, normalised in place
    kernels::linear(x, T, hidden, q_a_, s_.qa.data(), r, act());
    kernels::rmsnorm(s_.qa.data(), T, r, r, w_.q_a_norm.data(), eps, s_.qa.data(), r);
    kernels::linear(s_.qa.data(), T, r, q_proj_, s_.q.data(), H * qk, act());
  } else {
    kernels::linear(x, T, hidden, q_proj_, s_.q.data(), H * qk, act());
  }
  // Latent and rope key {T, lora + rope}: normalise the latent, rotate the key, cache both.
  grow(s_.kv, T * (lora + rope));
  kernels::linear(x, T, hidden, kv_a_, s_.kv.data(), lora + rope, act());
  kernels::rmsnorm(s_.kv.data(), T, lora, lora + rope, w_.kv_a_norm.data(), eps, s_.kv.data(), lora + rope);
  for (int64_t t = 0; t < T; ++t) {
    kernels::apply_rope(s_.kv.data() + t * (lora + rope) + lora, 1, 0, rope, cos + t * half, sin + t * half);
    kernels::apply_rope(s_.q.data() + t * H * qk + nope, H, qk, rope, cos + t * half, sin + t * half);
  }
  for (const SequenceChunk& s : batch.seqs)
    for (int64_t i = 0; i < s.num_tokens; ++i)
      kernels::latent_cache_store(cache, s.block_table, s.cached_tokens + i, s_.kv.data() + (s.first_token + i) * (lora + rope));

  proj_scope.stop();
  // Attention {T, H, v}: absorbed sequences together, non-absorbed one by one.
  grow(s_.attn, T * H * cfg_.v_head_dim);
  std::vector<size_t>& absorbed = s_.absorbed;
  absorbed.clear();
  for (size_t i = 0; i < batch.seqs.size(); ++i) {
    const SequenceChunk& s = batch.seqs[i];
    if (s.num_tokens == 0) continue;
    bool abs = mode == AttentionMode::kAbsorbed || (mode == AttentionMode::kAuto && s.decode);
    if (abs) absorbed.push_back(i);
    else attend_non_absorbed(s, cache, s_.attn.data());
  }
  if (!absorbed.empty()) attend_absorbed(batch, absorbed, cache, s_.attn.data());
  ProfileScope o_scope("attention.o_proj");
  kernels::linear(s_.attn.data(), T, H * cfg_.v_head_dim, o_, out, hidden, act());
}

void MlaAttention::decompress(const SequenceChunk& s, const kernels::LatentCacheView& cache, int64_t t0, int64_t n) {
  const int64_t H = cfg_.num_attention_heads, nope = cfg_.qk_nope_head_dim, rope = cfg_.qk_rope_head_dim;
  const int64_t qk = nope + rope, vd = cfg_.v_head_dim, lora = cfg_.kv_lora_rank, d = lora + rope;
  grow(s_.ctx, n * d);  // ctx [n, lora + rope]: context positions [t0, t0 + n) of the latent cache
  kernels::latent_cache_gather(cache, s.block_table, t0, n, s_.ctx.data());
  grow(s_.kvb, n * H * (nope + vd));  // kvb [n, H, nope + v] = kv_b(ctx): per-head keys' nope part and values
  kernels::linear(s_.ctx.data(), n, d, kv_b_, s_.kvb.data(), H * (nope + vd), act());
  grow(s_.k, n * H * qk);  // k [n, H, nope + rope]: kvb's nope part and the shared rope key
  grow(s_.v, n * H * vd);  // v [n, H, v]
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float* src = s_.kvb.data() + (t * H + h) * (nope + vd);
      float* k = s_.k.data() + (t * H + h) * qk;
      std::memcpy(k, src, size_t(nope) * sizeof(float));
      std::memcpy(k + nope, s_.ctx.data() + t * d + lora, size_t(rope) * sizeof(float));
      std::memcpy(s_.v.data() + (t * H + h) * vd, src + nope, size_t(vd) * sizeof(float));
    }
}

void MlaAttention::reserve_chunk(int64_t max_tokens) {
  const int64_t H = cfg_.num_attention_heads;
  grow(s_.lse, H * max_tokens);       // lse [n, H]: the running log-sum-exp of each query row
  grow(s_.part_lse, H * max_tokens);  // part_lse [n, H]: one context tile's
  grow(s_.part, max_tokens * H * cfg_.v_head_dim);  // part [n, H, v]: one tile's output, merged into out
}

void MlaAttention::attend_non_absorbed(const SequenceChunk& s, const kernels::LatentCacheView& cache, float* attn_out) {
  const int64_t H = cfg_.num_attention_heads, qk = cfg_.qk_nope_head_dim + cfg_.qk_rope_head_dim;
  const int64_t vd = cfg_.v_head_dim, n = s.num_tokens, L = s.cached_tokens + n;
  const float* q = s_.q.data() + s.first_token * H * qk;
  float* out = attn_out + s.first_token * H * vd;
  const float scale = float(cfg_.softmax_scale());
  if (L <= context_tile_) {  // the whole context at once
    decompress(s, cache, 0, L);
    kernels::mla_prefill(q, H * qk, s_.k.data(), H * qk, s_.v.data(), H * vd, n, L, H, qk, vd, scale, out, H * vd);
    return;
  }
  // A long context: the chunk attends causally to itself, then each tile of the cached context
  // (wholly visible to every query) is folded in through the log-sum-exps, so the decompressed
  // K and V never exceed one tile (or the chunk, which the step's token budget bounds).
  grow(s_.lse, H * n);       // lse [n, H]
  grow(s_.part_lse, H * n);  // part_lse [n, H]
  grow(s_.part, n * H * vd);  // part [n, H, v]
  decompress(s, cache, s.cached_tokens, n);
  kernels::mla_prefill(q, H * qk, s_.k.data(), H * qk, s_.v.data(), H * vd, n, n, H, qk, vd, scale, out, H * vd,
                       s_.lse.data(), true);
  for (int64_t t0 = 0; t0 < s.cached_tokens; t0 += context_tile_) {
    const int64_t len = std::min(context_tile_, s.cached_tokens - t0);
    decompress(s, cache, t0, len);
    kernels::mla_prefill(q, H * qk, s_.k.data(), H * qk, s_.v.data(), H * vd, n, len, H, qk, vd, scale, s_.part.data(),
                         H * vd, s_.part_lse.data(), false);
    kernels::attention_merge(out, H * vd, s_.lse.data(), s_.part.data(), H * vd, s_.part_lse.data(), n, H, vd);
  }
}

void MlaAttention::attend_absorbed(const Batch& batch, const std::vector<size_t>& seqs,
                                   const kernels::LatentCacheView& cache, float* attn_out) {
  const int64_t H = cfg_.num_attention_heads, nope = cfg_.qk_nope_head_dim, rope = cfg_.qk_rope_head_dim;
  const int64_t qk = nope + rope, vd = cfg_.v_head_dim, lora = cfg_.kv_lora_rank, d = lora + rope;
  // The absorbed rows, in batch order.
  s_.rows.clear();
  for (size_t i : seqs)
    for (int64_t t = 0; t < batch.seqs[i].num_tokens; ++t) s_.rows.push_back(batch.seqs[i].first_token + t);
  const int64_t n = int64_t(s_.rows.size());
  // Fold W_UK into the queries, all heads in one masked grouped GEMM: [H, n, nope] -> [H, n, lora].
  grow(s_.heads_in, H * n * std::max(nope, lora));
  grow(s_.heads_out, H * n * std::max(lora, vd));
  grow(s_.counts, H);  // counts [H]: rows per head of the masked grouped GEMM (all n)
  std::fill(s_.counts.begin(), s_.counts.begin() + H, int32_t(n));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t r = 0; r < n; ++r)
      std::memcpy(s_.heads_in.data() + (h * n + r) * nope, s_.q.data() + (s_.rows[size_t(r)] * H + h) * qk,
                  size_t(nope) * sizeof(float));
  {
    ProfileScope scope("attention.absorb_uk");
    heads_gemm(s_.heads_in.data(), n, nope, uk_t_ptr_, s_.heads_out.data());
  }
  // q for the latent cache: [n, H, lora | rope].
  grow(s_.qabs, n * H * d);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < H; ++h) {
      float* dst = s_.qabs.data() + (r * H + h) * d;
      std::memcpy(dst, s_.heads_out.data() + (h * n + r) * lora, size_t(lora) * sizeof(float));
      std::memcpy(dst + lora, s_.q.data() + (s_.rows[size_t(r)] * H + h) * qk + nope, size_t(rope) * sizeof(float));
    }
  // Attention over the latent cache, one call per query-group size (see QueryGroup).
  grow(s_.olat, n * H * lora);  // olat [n, H, lora]: attention output in the latent space
  std::vector<QueryGroup>& groups = s_.groups;
  groups.clear();
  int64_t max_blocks = 1, row = 0;
  for (size_t i : seqs) {
    const SequenceChunk& s = batch.seqs[i];
    const int32_t L = int32_t(s.cached_tokens + s.num_tokens);
    QueryGroup* last = groups.empty() ? nullptr : &groups.back();
    if (last && last->rows_of_decodes && s.decode && s.block_table == last->table && s.cached_tokens == last->len) {
      ++last->size;  // the next row of the same sequence: a draft after its token
      last->len = L;
    } else {
      groups.push_back({row, s.num_tokens, L, s.block_table, s.decode});
    }
    max_blocks = std::max<int64_t>(max_blocks, (L + cache.block_size - 1) / cache.block_size);
    row += s.num_tokens;
  }
  grow(s_.tables, int64_t(groups.size()) * max_blocks);  // tables [groups, max_blocks]: their block tables
  grow(s_.seqlens, int64_t(groups.size()));             // seqlens [groups]: context length with the group's rows
  const float scale = float(cfg_.softmax_scale());
  ProfileScope scope("attention.mla_decode");
  if (std::all_of(groups.begin(), groups.end(), [&](const QueryGroup& g) { return g.size == groups[0].size; })) {
    // One size (a decode step, with or without the same number of drafts per sequence): the rows
    // are already [groups, size, H, d], so they attend in place.
    for (size_t g = 0; g < groups.size(); ++g) fill_group_table(groups[g], cache.block_size, max_blocks, g);
    kernels::mla_decode(s_.qabs.data(), int64_t(groups.size()), groups[0].size, H, cache, s_.tables.data(), max_blocks,
                        s_.seqlens.data(), lora, scale, true, s_.olat.data(), nullptr);
  } else {
    // Mixed sizes: the groups ordered by size (each keeps its row, so the order is free), each
    // size's run gathered for one batched call.
    std::sort(groups.begin(), groups.end(), [](const QueryGroup& a, const QueryGroup& b) {
      return a.size != b.size ? a.size < b.size : a.row < b.row;
    });
    std::vector<float>& qg = s_.kvb;  // qg [groups of this size, size, H, lora + rope]: their queries
    std::vector<float>& og = s_.ctx;  // og [groups of this size, size, H, lora]: their outputs
    grow(qg, n * H * d);
    grow(og, n * H * lora);
    for (size_t first = 0, end = 0; first < groups.size(); first = end) {
      const int64_t size = groups[first].size;
      for (end = first; end < groups.size() && groups[end].size == size; ++end) {
        fill_group_table(groups[end], cache.block_size, max_blocks, end - first);
        std::memcpy(qg.data() + int64_t(end - first) * size * H * d, s_.qabs.data() + groups[end].row * H * d,
                    size_t(size * H * d) * sizeof(float));
      }
      kernels::mla_decode(qg.data(), int64_t(end - first), size, H, cache, s_.tables.data(), max_blocks,
                          s_.seqlens.data(), lora, scale, true, og.data(), nullptr);
      for (size_t g = first; g < end; ++g)
        std::memcpy(s_.olat.data() + groups[g].row * H * lora, og.data() + int64_t(g - first) * size * H * lora,
                    size_t(size * H * lora) * sizeof(float));
    }
  }
  scope.stop();
  // Unabsorb, all heads in one masked grouped GEMM: [H, n, lora] -> [H, n, v].
  for (int64_t h = 0; h < H; ++h)
    for (int64_t r = 0; r < n; ++r)
      std::memcpy(s_.heads_out.data() + (h * n + r) * lora, s_.olat.data() + (r * H + h) * lora, size_t(lora) * sizeof(float));
  grow(s_.heads_in, H * n * vd);
  float* vout = s_.heads_in.data();  // vout [H, n, v]
  {
    ProfileScope scope("attention.absorb_uv");
    heads_gemm(s_.heads_out.data(), n, lora, uv_ptr_, vout);
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < H; ++h)
      std::memcpy(attn_out + (s_.rows[size_t(r)] * H + h) * vd, vout + (h * n + r) * vd, size_t(vd) * sizeof(float));
}

void MlaAttention::fill_group_table(const QueryGroup& g, int64_t block_size, int64_t max_blocks, size_t slot) {
  std::copy(g.table, g.table + (g.len + block_size - 1) / block_size, s_.tables.begin() + int64_t(slot) * max_blocks);
  s_.seqlens[slot] = g.len;
}

void MlaAttention::heads_gemm(const float* in, int64_t n, int64_t k, const std::vector<const kernels::PackedMatrix*>& w_ptrs,
                              float* out) {
  const int64_t H = cfg_.num_attention_heads;
  const kernels::ActQuant a_q = kernels::activation_format(act(), w_ptrs[0]->dtype);
  if (a_q == kernels::ActQuant::kF32) {
    kernels::gemm_grouped_masked(in, nullptr, H, n, k, s_.counts.data(), w_ptrs.data(), out);
    return;
  }
  // Present the rows as the precision asks (one activation format for all heads); s_.kvb and s_.k
  // are free scratch at this point of the absorbed path.
  grow(s_.kvb, H * n * k);                   // [H * n, k] in the activation format
  grow(s_.k, H * n * kernels::k_blocks(k));  // [H * n, k / 128]: their scales
  bool scaled = kernels::prepare_activations(in, H * n, k, k, a_q, s_.kvb.data(), s_.k.data());
  kernels::gemm_grouped_masked(s_.kvb.data(), scaled ? s_.k.data() : nullptr, H, n, k, s_.counts.data(), w_ptrs.data(), out);
}

}  // namespace dsinfer::model
