#include "model/attention.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "kernels/rope.h"

namespace dsinfer::model {

namespace {
void grow(std::vector<float>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
}
}  // namespace

void MlaAttention::forward(const float* x, const Batch& batch, const kernels::LatentCacheView& cache,
                           const float* cos, const float* sin, AttentionMode mode, float* out) {
  const int64_t T = int64_t(batch.tokens.size()), H = cfg_.num_attention_heads;
  const int64_t nope = cfg_.qk_nope_head_dim, rope = cfg_.qk_rope_head_dim, qk = nope + rope;
  const int64_t lora = cfg_.kv_lora_rank, half = rope / 2;
  const float eps = float(cfg_.rms_norm_eps);

  // Queries {T, H, qk}.
  grow(q_, T * H * qk);
  if (w_.q_a) {
    grow(qa_, T * w_.q_a->rows);
    kernels::linear(x, T, *w_.q_a, qa_.data());
    kernels::rmsnorm(qa_.data(), T, w_.q_a->rows, w_.q_a->rows, w_.q_a_norm.data(), eps, qa_.data(), w_.q_a->rows);
    kernels::linear(qa_.data(), T, w_.q, q_.data());
  } else {
    kernels::linear(x, T, w_.q, q_.data());
  }
  // Latent and rope key {T, lora + rope}: normalise the latent, rotate the key, cache both.
  grow(kv_, T * (lora + rope));
  kernels::linear(x, T, w_.kv_a, kv_.data());
  kernels::rmsnorm(kv_.data(), T, lora, lora + rope, w_.kv_a_norm.data(), eps, kv_.data(), lora + rope);
  for (int64_t t = 0; t < T; ++t) {
    kernels::apply_rope(kv_.data() + t * (lora + rope) + lora, 1, 0, rope, cos + t * half, sin + t * half);
    kernels::apply_rope(q_.data() + t * H * qk + nope, H, qk, rope, cos + t * half, sin + t * half);
  }
  for (const SequenceChunk& s : batch.seqs)
    for (int64_t i = 0; i < s.num_tokens; ++i)
      kernels::latent_cache_store(cache, s.block_table, s.cached_tokens + i, kv_.data() + (s.first_token + i) * (lora + rope));

  // Attention per sequence {T, H, v}.
  grow(attn_, T * H * cfg_.v_head_dim);
  for (const SequenceChunk& s : batch.seqs) {
    bool absorbed = mode == AttentionMode::kAbsorbed || (mode == AttentionMode::kAuto && s.num_tokens == 1);
    if (absorbed) attend_absorbed(s, cache, attn_.data());
    else attend_non_absorbed(s, cache, attn_.data());
  }
  kernels::linear(attn_.data(), T, w_.o, out);
}

void MlaAttention::attend_non_absorbed(const SequenceChunk& s, const kernels::LatentCacheView& cache, float* attn_out) {
  const int64_t H = cfg_.num_attention_heads, nope = cfg_.qk_nope_head_dim, rope = cfg_.qk_rope_head_dim;
  const int64_t qk = nope + rope, vd = cfg_.v_head_dim, lora = cfg_.kv_lora_rank, d = lora + rope;
  const int64_t L = s.cached_tokens + s.num_tokens;
  // Decompress every context token: {L, H, nope + v}.
  grow(ctx_, L * d);
  kernels::latent_cache_gather(cache, s.block_table, 0, L, ctx_.data());
  grow(kvb_, L * H * (nope + vd));
  kernels::linear(ctx_.data(), L, d, w_.kv_b, kvb_.data(), H * (nope + vd));
  grow(k_, L * H * qk);
  grow(v_, L * H * vd);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float* src = kvb_.data() + (t * H + h) * (nope + vd);
      float* k = k_.data() + (t * H + h) * qk;
      std::memcpy(k, src, size_t(nope) * sizeof(float));
      std::memcpy(k + nope, ctx_.data() + t * d + lora, size_t(rope) * sizeof(float));
      std::memcpy(v_.data() + (t * H + h) * vd, src + nope, size_t(vd) * sizeof(float));
    }
  kernels::causal_attention(q_.data() + s.first_token * H * qk, H * qk, k_.data(), H * qk, v_.data(), H * vd,
                            s.num_tokens, L, H, qk, vd, float(cfg_.softmax_scale()),
                            attn_out + s.first_token * H * vd, H * vd);
}

void MlaAttention::attend_absorbed(const SequenceChunk& s, const kernels::LatentCacheView& cache, float* attn_out) {
  const int64_t H = cfg_.num_attention_heads, nope = cfg_.qk_nope_head_dim, rope = cfg_.qk_rope_head_dim;
  const int64_t qk = nope + rope, vd = cfg_.v_head_dim, lora = cfg_.kv_lora_rank, d = lora + rope;
  const int64_t n = s.num_tokens;
  // Fold W_UK into the queries: q_latent[h] = W_UK[h]ᵀ q_nope[h]; append the rotated q_rope.
  grow(qabs_, n * H * d);
  for (int64_t h = 0; h < H; ++h) {
    kernels::WeightView uk = w_.kv_b.slice_rows(h * (nope + vd), nope);
    kernels::linear_transposed(q_.data() + s.first_token * H * qk + h * qk, n, H * qk, uk, qabs_.data() + h * d, H * d);
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < H; ++h)
      std::memcpy(qabs_.data() + (i * H + h) * d + lora, q_.data() + ((s.first_token + i) * H + h) * qk + nope,
                  size_t(rope) * sizeof(float));
  grow(olat_, n * H * lora);
  kernels::mla_decode(qabs_.data(), n, H, cache, s.block_table, s.cached_tokens + n, lora,
                      float(cfg_.softmax_scale()), olat_.data(), nullptr);
  // Unabsorb: v[h] = W_UV[h] · o_latent[h].
  for (int64_t h = 0; h < H; ++h) {
    kernels::WeightView uv = w_.kv_b.slice_rows(h * (nope + vd) + nope, vd);
    kernels::linear(olat_.data() + h * lora, n, H * lora, uv, attn_out + s.first_token * H * vd + h * vd, H * vd);
  }
}

}  // namespace dsinfer::model
