// The engine options of `dsinfer generate` and `dsinfer logits`: one request, whose prompt is one
// prefill chunk, with KV room for exactly it and its new tokens. No warm-up (a one-off run has no
// steady state to protect) and no prefix cache (nothing to share).
#pragma once

#include <algorithm>
#include <cstdint>

#include "engine/engine_options.h"
#include "kernels/latent_cache.h"

namespace dsinfer::app {

// draft_tokens: speculative decoding's drafts per step (the step and the KV hold them too).
inline engine::EngineOptions one_request_options(int64_t prompt_tokens, int64_t new_tokens, int draft_tokens = 0) {
  engine::EngineOptions o;
  o.max_running = 1;
  o.max_queued = 1;
  o.max_batch_tokens = std::max<int64_t>(1 + draft_tokens, prompt_tokens);
  const int64_t bs = kernels::kKvBlockTokens;
  o.kv_blocks = (prompt_tokens + new_tokens + draft_tokens + bs - 1) / bs + 1;
  o.draft_tokens = draft_tokens;
  o.prefix_caching = false;
  o.warm_up = false;
  return o;
}

}  // namespace dsinfer::app
