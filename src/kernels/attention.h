// MLA attention kernels, in the two forms DeepSeek serves with.
//
// mla_decode (absorbed form, FlashMLA's semantics and argument shapes): queries already carry
// W_UK folded in, so each head's query is [q_latent (kv_lora) | q_rope] and attends directly over
// the cached latent rows [latent | k_rope]; the output is the softmax-weighted latent (dv =
// kv_lora), to be multiplied by W_UV afterwards. Causal with bottom-right alignment: of s_q
// queries over a context of L tokens (the queries' own tokens included), query i sees keys
// [0, L - s_q + i]. Work is split by cost: each sequence's KV blocks are cut into splits of a
// fixed number of blocks — a partition that depends only on that sequence's own length, so the
// result never depends on the batch — the splits run longest first on the thread pool, each
// producing a partial (acc, max, sum) per query row, and a combine step merges them in split
// order (equal to the unsplit result within rounding).
//
// mla_prefill (non-absorbed form): ordinary causal multi-head attention over decompressed K and V
// with the same bottom-right alignment, flash-style: tiles of queries against tiles of keys with
// an online softmax, so no [s_q x L] score matrix is ever materialised.
#pragma once

#include <cstdint>

#include "kernels/latent_cache.h"

namespace dsinfer::kernels {

inline constexpr int64_t kMlaDefaultBlocksPerSplit = 4;  // 256 tokens per split

// q [b, s_q, h_q, cache.dim] fp32; cache [num_blocks, block_size, 1, dim] (bf16, fp32 or FP8);
// block_table [b, max_blocks]; cache_seqlens [b]; out [b, s_q, h_q, dv]; lse [b, h_q, s_q]
// (natural log; nullable). blocks_per_split: split size in KV blocks (large = unsplit).
void mla_decode(const float* q, int64_t batch, int64_t s_q, int64_t h_q, const LatentCacheView& cache,
                const int32_t* block_table, int64_t max_blocks, const int32_t* cache_seqlens, int64_t dv,
                float softmax_scale, bool causal, float* out, float* lse,
                int64_t blocks_per_split = kMlaDefaultBlocksPerSplit);

// q [s_q, heads, d_qk] (row stride ldq per token), k [L, heads, d_qk] (ldk), v [L, heads, dv]
// (ldv); out [s_q, heads, dv] (ldo). Causal: the s_q queries are the last s_q of the L tokens.
// Not causal: every query sees all L keys (a tile of cached context that precedes the queries).
// lse [heads, s_q] (natural log of the softmax denominator; nullable) lets partial results over
// disjoint key ranges be merged (attention_merge).
void mla_prefill(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t s_q,
                 int64_t context_len, int64_t heads, int64_t d_qk, int64_t dv, float softmax_scale, float* out,
                 int64_t ldo, float* lse = nullptr, bool causal = true);

// Folds a partial attention result over other keys (part [rows, heads, dv] with row stride
// ld_part, part_lse [heads, rows]) into out/lse (same shapes, row stride ldo): both become the
// attention over the union of the two key sets.
void attention_merge(float* out, int64_t ldo, float* lse, const float* part, int64_t ld_part, const float* part_lse,
                     int64_t rows, int64_t heads, int64_t dv);

}  // namespace dsinfer::kernels
