// The engine's side of prefill/decode disaggregation (docs/serving.md, "Disaggregated serving"):
// a prompt's latent KV computed by one engine (a prefill instance) and continued by another (a
// decode instance). The engine knows nothing of the transport; the serve layer implements
//  - KvExport, handed to a prefill engine with a request: told, inside the forward, each time a
//    layer's KV rows of the request are in the cache (so they can leave while the later layers
//    compute), and once the first token is sampled;
//  - and drives KvImport, which a decode engine creates when it reserves blocks for a request:
//    verified rows are written into the reserved blocks from the transport's thread, and the
//    engine starts decoding once every row and the first token have arrived.
#pragma once

#include <cstdint>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/request.h"
#include "kernels/latent_cache.h"

namespace dsinfer::engine {

// What the prefill side hands on besides the KV: the token it sampled after the prompt, the
// sequence's random state after that draw (so a sampled continuation is the one `serve --role
// both` would draw), the token's logprobs when asked for, the prompt's prefix-cache hit, and with
// speculative decoding the MTP module's drafts after the first token (its layer's rows travel
// with the others, so the decode side's first step verifies them as `--role both` would).
struct FirstToken {
  int32_t id = 0;
  uint64_t rng = 0;
  std::optional<TokenLogprob> logprob;
  int64_t cached_tokens = 0;
  int64_t disk_cached_tokens = 0;  // of cached_tokens, those the prefill side's disk tier loaded
  std::vector<int32_t> drafts = {};  // at most EngineOptions::kMaxDraftTokens
};

// A prefill request's destination. Called on the engine's step thread.
class KvExport {
 public:
  virtual ~KvExport() = default;
  // Layer `layer` of the prompt's first `rows` tokens is in the cache (rows of `cache`, through
  // `block_table`): this step's chunk ends there, and the rows before it came from earlier steps
  // or the prefix cache. Must not block: copy what is needed and return.
  virtual void layer_written(int64_t layer, const kernels::LatentCacheView& cache, const int32_t* block_table,
                             int64_t rows) = 0;
  // The prompt is done and its first token sampled.
  virtual void prefill_done(const FirstToken& first) = 0;
};

// The receiving end of one request's KV: blocks reserved by the decode engine, filled by the
// transport's thread (write_rows), completed by the first token (or failed). Thread-safe.
class KvImport {
 public:
  enum class State { kReserving, kReserved, kReady, kFailed };

  // timeout_s: the longest silence from the prefill side (no rows, no heartbeat) before the
  // import fails; counted from now, and again from every sign of life.
  KvImport(int64_t prompt_tokens, double timeout_s);

  // Engine thread: the blocks are reserved (their rows start writable) or could not be.
  void reserved(const kernels::KvCacheView& cache, std::vector<int32_t> block_table);
  // Any thread: ends the import with an error (the request fails with it).
  void fail(const std::string& why);
  // Waits until the reservation is decided (reserved or failed) or timeout_s passed; returns the
  // state then.
  State wait_reserved(double timeout_s);

  // Transport thread. A new attempt (the router retried the prefill elsewhere) forgets the rows
  // of older ones; rows of an older attempt are ignored. Returns false with `why` for rows that do
  // not fit the reservation (the caller fails the import).
  bool begin_attempt(uint32_t attempt);
  bool write_rows(uint32_t attempt, int64_t layer, int64_t block_index, int64_t rows, const uint8_t* data,
                  size_t bytes, std::string& why);
  // The first token (the prefill side's last message). Ready once every row is in too.
  void first_token(uint32_t attempt, const FirstToken& first);
  // A heartbeat: the prefill side is alive (its prompt may be queued behind others).
  void touch();

  State state() const;
  std::string error() const;
  int64_t prompt_tokens() const { return prompt_tokens_; }
  // When the import fails unless the prefill side is heard from again.
  double deadline() const;
  // Once ready: what the prefill side sampled.
  FirstToken first() const;
  // Rows written so far, all layers (for metrics and tests).
  uint64_t bytes_written() const;
  // Called (without the lock) whenever the state changes, so the engine wakes.
  void set_on_change(std::function<void()> fn);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  const int64_t prompt_tokens_;
  const double timeout_s_;
  double last_heard_;
  State state_ = State::kReserving;
  std::string error_;
  kernels::KvCacheView cache_;
  std::vector<int32_t> table_;
  uint32_t attempt_ = 0;
  std::vector<int32_t> rows_have_;  // [layer][block]
  int64_t missing_ = 0;             // (layer, block) pairs not yet complete
  std::optional<FirstToken> first_;
  uint64_t bytes_ = 0;
  std::function<void()> on_change_;

  int64_t rows_needed(int64_t block) const;
  // Moves to a newer attempt (forgetting the older one's rows); false for an older attempt.
  bool attempt_locked(uint32_t attempt);
  bool check_ready();
  void reset_rows();
  void notify();  // with mu_ released
};

}  // namespace dsinfer::engine
