// What the engine hands the model for one forward step (DESIGN.md, "Engine ⇄ model"): the
// flattened new tokens of every sequence in the step — prefill chunks and single decode tokens
// alike — with each sequence's span, how many of its tokens are already in the KV cache, and its
// block table; plus which rows need logits.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/latent_cache.h"

namespace dsinfer::model {

struct SequenceChunk {
  int64_t first_token = 0;     // index of this chunk's first token in Batch::tokens
  int64_t num_tokens = 0;      // new tokens in this step
  int64_t cached_tokens = 0;   // tokens of this sequence already in the cache (its position offset)
  const int32_t* block_table = nullptr;  // ceil((cached + new) / block_size) block ids
};

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<SequenceChunk> seqs;
  std::vector<int64_t> logits_rows;  // token indices whose logits the caller wants, in output order

  // Appends one sequence's chunk; positions run from cached_tokens.
  void add(const int32_t* ids, int64_t n, int64_t cached_tokens, const int32_t* block_table, bool all_logits) {
    int64_t first = int64_t(tokens.size());
    // resize + copy rather than a range insert: GCC 12 raises a false -Wstringop-overflow on
    // inserting from a single-element pointer into an empty vector.
    tokens.resize(size_t(first + n));
    std::copy_n(ids, n, tokens.begin() + first);
    seqs.push_back({first, n, cached_tokens, block_table});
    if (all_logits)
      for (int64_t i = 0; i < n; ++i) logits_rows.push_back(first + i);
    else if (n > 0)
      logits_rows.push_back(first + n - 1);
  }
};

// The shape of a model's latent cache: per layer and token one row of `dim` values (latent, then
// the rope_dim rope key) stored as `dtype` (kernels/latent_cache.h; FP8 rows keep the rope part
// in bf16 and add a scale per 128 latent channels).
struct KvCacheSpec {
  int64_t num_layers = 0, dim = 0, rope_dim = 0;
  DType dtype = DType::kBF16;
  int64_t block_size = 64;

  int64_t row_bytes() const { return kernels::latent_row_bytes(dtype, dim, rope_dim); }
  int64_t block_bytes() const { return num_layers * block_size * row_bytes(); }  // all layers
};

// The whole latent cache: num_layers regions of [num_blocks, block_size, row] each.
struct KvCacheView {
  void* base = nullptr;
  KvCacheSpec spec;
  int64_t num_blocks = 0;

  DType dtype() const { return spec.dtype; }
  kernels::LatentCacheView layer(int64_t l) const {
    const size_t layer_bytes = size_t(num_blocks * spec.block_size * spec.row_bytes());
    return {static_cast<uint8_t*>(base) + size_t(l) * layer_bytes, spec.dtype, spec.block_size, spec.dim, spec.rope_dim};
  }
};

}  // namespace dsinfer::model
