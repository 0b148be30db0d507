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
  // A generated token's step (AttentionMode::kAuto attends it in the absorbed form). A prompt
  // chunk is not, even of one token: the form must not depend on where the scheduler cut the
  // prompt, or a prompt's logits would depend on what else shared its steps.
  bool decode = false;
};

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<SequenceChunk> seqs;
  std::vector<int64_t> logits_rows;  // token indices whose logits the caller wants, in output order

  // Which of a chunk's rows want logits.
  enum class Logits { kNone, kLast, kAll };

  // Appends one sequence's chunk; positions run from cached_tokens. `decode` (see SequenceChunk)
  // defaults to a single token, for callers that run no prompts in single-token steps.
  void add(const int32_t* ids, int64_t n, int64_t cached_tokens, const int32_t* block_table, Logits logits) {
    add(ids, n, cached_tokens, block_table, logits, n == 1);
  }
  void add(const int32_t* ids, int64_t n, int64_t cached_tokens, const int32_t* block_table, Logits logits, bool decode) {
    int64_t first = int64_t(tokens.size());
    // resize + copy rather than a range insert: GCC 12 raises a false -Wstringop-overflow on
    // inserting from a single-element pointer into an empty vector.
    tokens.resize(size_t(first + n));
    std::copy_n(ids, n, tokens.begin() + first);
    seqs.push_back({first, n, cached_tokens, block_table, decode && n == 1});
    if (logits == Logits::kAll)
      for (int64_t i = 0; i < n; ++i) logits_rows.push_back(first + i);
    else if (logits == Logits::kLast && n > 0)
      logits_rows.push_back(first + n - 1);
  }
  void clear() {
    tokens.clear();
    seqs.clear();
    logits_rows.clear();
  }
};

// The latent cache the model reads and writes (kernels/latent_cache.h, below the cache layer that
// allocates it).
using kernels::KvCacheSpec;
using kernels::KvCacheView;

}  // namespace dsinfer::model
