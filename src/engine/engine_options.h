// The engine's limits and defaults (those of `dsinfer serve`), in one place: the scheduler reads
// the same struct, so a limit has one name and one default.
#pragma once

#include <cstdint>
#include <string>

namespace dsinfer::engine {

struct EngineOptions {
  // KV pool: --kv-cache-gb, bounded by the memory left after the weights and the warm-up (so a
  // too-large value shrinks, logged, instead of swapping); 0: that memory's kv_memory_fraction.
  double kv_cache_gb = 2.0;
  double kv_memory_fraction = 0.9;
  int64_t kv_blocks = 0;           // > 0: exact block count instead (tests)
  int64_t max_batch_tokens = 2048; // tokens per forward step (prefill chunks + decodes)
  int64_t max_running = 64;        // sequences in the running batch
  int64_t max_queued = 256;        // requests waiting beyond this are refused (HTTP 429)
  int64_t max_model_len = 0;       // 0: the model's max_position_embeddings
  bool prefix_caching = true;
  // The prefix cache's disk tier (docs/serving.md): --kv-disk-dir (empty: none), its capacity,
  // the age past which an unused block file is removed (0: never), and O_DIRECT reads.
  std::string kv_disk_dir;
  double kv_disk_gb = 10;
  double kv_disk_ttl_s = 0;
  bool kv_disk_direct_io = false;
  // Speculative decoding with the model's MTP module (--speculative mtp --draft-tokens k): drafts
  // per step, 0 off. The model must be loaded with its module (model::ModelOptions::mtp).
  int draft_tokens = 0;
  static constexpr int kMaxDraftTokens = 4;
  // Run the largest step the limits allow once at start, so every buffer reaches its size then
  // and steady-state steps allocate nothing (tests that build many engines may turn it off).
  bool warm_up = true;
};

}  // namespace dsinfer::engine
