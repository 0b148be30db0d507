// One completion's reply as the engine produces it: engine ChoiceUpdates turned into OpenAI's
// streamed chunks (SSE "data:" events) or folded into the single JSON body of a non-streamed
// reply. Pure formatting: no I/O, no locks; the server's pump owns one per request.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "serve/protocol.h"
#include "serve/reasoning.h"
#include "tokenizer/tokenizer.h"

namespace dsinfer::serve {

class CompletionStream {
 public:
  CompletionStream(const ParsedRequest& pr, uint64_t request_id, std::string model_name);

  bool streaming() const { return stream_mode_; }
  // Streaming: the SSE events for these updates (the chat role chunk first, once).
  std::string events(const std::vector<engine::ChoiceUpdate>& ups, const tokenizer::Tokenizer& tok);
  // Streaming: the events that close the stream (an error event, the usage chunk, [DONE]).
  std::string closing_events(const std::string& error, const engine::Usage& usage);
  // Non-streaming: fold updates in; body() is the reply once the request is done.
  void accumulate(const std::vector<engine::ChoiceUpdate>& ups, const tokenizer::Tokenizer& tok);
  nlohmann::json body(const engine::Usage& usage) const;

 private:
  Endpoint endpoint_;
  std::string id_, model_;
  int64_t created_ = 0;
  bool include_usage_ = false, want_logprobs_ = false, stream_mode_ = false, role_sent_ = false;
  bool return_token_ids_ = false, prompt_ids_sent_ = false;
  std::vector<int32_t> prompt_ids_;               // when return_token_ids
  std::vector<std::vector<int32_t>> token_ids_;   // non-streamed, per choice, when return_token_ids
  std::vector<ReasoningSplitter> splitters_;
  std::vector<int64_t> text_offsets_;
  std::vector<std::string> content_, reasoning_;  // non-streamed totals per choice
  std::vector<nlohmann::json> logprobs_;
  std::vector<engine::FinishReason> finish_;

  nlohmann::json chunk_head() const;
  std::string sse(nlohmann::json j);
  // One update as a streamed choice (null when it carries nothing), or folded into the totals.
  nlohmann::json apply(const engine::ChoiceUpdate& u, const tokenizer::Tokenizer& tok);
};

}  // namespace dsinfer::serve
