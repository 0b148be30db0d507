// One generated continuation (one choice of a request) as it moves through the scheduler: its
// tokens (prompt, then generated), how many of them are in the KV cache, and its block table (the
// blocks' prefix keys live on the blocks: cache::BlockManager). docs/serving.md has the state
// table.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/kv_transfer.h"
#include "engine/request.h"
#include "engine/stop_matcher.h"
#include "tokenizer/streaming_detokenizer.h"

namespace dsinfer::engine {

struct Request;

enum class SeqState { kWaiting, kRunning, kFinished };

struct Sequence {
  uint64_t id = 0;
  Request* request = nullptr;
  int index = 0;  // choice index within the request
  SeqState state = SeqState::kWaiting;

  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int64_t num_prompt = 0;
  int64_t computed = 0;         // leading tokens whose KV is in the cache
  std::vector<int32_t> blocks;  // block table
  // The MTP module's drafts of the tokens after the last one (engine/mtp_drafter.h), fed with it
  // in the next step; empty without speculative decoding.
  std::vector<int32_t> drafts;
  int64_t disk_hit_tokens = 0;  // prompt tokens the disk tier loaded for this sequence

  uint64_t rng = 0;
  std::unique_ptr<tokenizer::StreamingDetokenizer> detok;
  StopMatcher stop;
  FinishReason finish = FinishReason::kNone;
  double last_token_time = 0;

  int64_t num_generated() const { return int64_t(tokens.size()) - num_prompt; }
  int64_t uncomputed() const { return int64_t(tokens.size()) - computed; }
};

// The engine's record of a submitted request.
struct Request {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  SamplingParams params;
  std::shared_ptr<RequestStream> stream;
  std::shared_ptr<const StopSet> stops;  // compiled once, shared by every choice's StopMatcher
  double arrival = 0;
  uint64_t base_seed = 0;
  std::vector<std::unique_ptr<Sequence>> seqs;  // choice 0 first; the others join after its prefill
  int64_t cached_tokens = -1;  // prefix-cache hit of the first admission
  int64_t disk_cached_tokens = 0;  // of which the disk tier loaded
  int finished = 0;
  bool forked = false;
  bool first_token_seen = false;
  std::string error;  // set when handling this request threw: it ends with this error
  // Prefill/decode disaggregation (engine/kv_transfer.h): where a prefill instance sends the
  // prompt's KV, or what a decode instance waits for before it runs the request.
  std::shared_ptr<KvExport> export_to;
  std::shared_ptr<KvImport> import_from;
};

}  // namespace dsinfer::engine
