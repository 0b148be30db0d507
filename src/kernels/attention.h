// MLA attention kernels, in the two forms DeepSeek serves with.
//
// mla_decode (absorbed form, FlashMLA's semantics): queries already carry W_UK folded in, so
// each head's query is [q_latent (kv_lora) | q_rope] and attends directly over the cached latent
// rows [latent | k_rope]; the output is the softmax-weighted latent (dv = kv_lora), to be
// multiplied by W_UV afterwards. Causal with bottom-right alignment: of s_q queries over a
// context of L tokens (the queries' own tokens included), query i sees keys [0, L - s_q + i].
//
// causal_attention (non-absorbed form, prefill): ordinary multi-head attention over decompressed
// K and V with the same bottom-right causal alignment, computed with an online softmax so no
// [s_q x L] score matrix is ever materialised.
#pragma once

#include <cstdint>

#include "kernels/latent_cache.h"

namespace dsinfer::kernels {

// q [s_q, heads, cache.dim]; out [s_q, heads, dv] with dv <= cache.dim the latent width;
// lse [heads, s_q] natural-log sum of exp of scaled scores (nullable).
void mla_decode(const float* q, int64_t s_q, int64_t heads, const LatentCacheView& cache,
                const int32_t* block_table, int64_t context_len, int64_t dv, float softmax_scale, float* out,
                float* lse);

// q [s_q, heads, d_qk] (row stride ldq per token), k [L, heads, d_qk] (ldk), v [L, heads, dv]
// (ldv); out [s_q, heads, dv] (ldo).
void causal_attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
                      int64_t s_q, int64_t context_len, int64_t heads, int64_t d_qk, int64_t dv,
                      float softmax_scale, float* out, int64_t ldo);

}  // namespace dsinfer::kernels
