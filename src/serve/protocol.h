// The OpenAI/DeepSeek request and response shapes: JSON bodies of /v1/chat/completions and
// /v1/completions parsed and validated into an engine request (throwing ApiError with the
// offending field as `param`), and the pieces of their replies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "engine/sampling_params.h"
#include "engine/validated_request.h"
#include "tokenizer/tokenizer.h"

namespace dsinfer::serve {

enum class Endpoint { kChat, kCompletion };

struct ProtocolContext {
  const tokenizer::Tokenizer* tokenizer = nullptr;
  std::vector<std::string> model_names;  // accepted values of "model"; the first is reported
  engine::RequestLimits limits;          // the engine's (Engine::limits)
};

// A request body read, its prompt tokenized, and the result validated once against the engine's
// limits (engine/validated_request.h): what the server submits as it is.
struct ParsedRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  std::optional<engine::ValidatedRequest> request;
  const std::vector<int32_t>& prompt() const { return request->prompt(); }
  const engine::SamplingParams& params() const { return request->params(); }
  bool stream = false;
  bool include_usage = false;
  bool want_logprobs = false;
  bool prompt_opens_reasoning = false;  // the rendered prompt ends inside <think>
  // vLLM's extension: the reply also carries the prompt's token ids ("prompt_token_ids") and
  // each choice's generated ids ("token_ids"), so a client can see exactly what the model saw.
  bool return_token_ids = false;
};

ParsedRequest parse_request(Endpoint endpoint, const std::string& body, const ProtocolContext& ctx);

// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details": {"cached_tokens"},
//  "prompt_cache_hit_tokens", "prompt_cache_miss_tokens"}
nlohmann::json usage_json(const engine::Usage& u);

// Logprobs of some tokens in the chat shape ({"content": [...]}) or the completions shape
// ({"tokens", "token_logprobs", "top_logprobs", "text_offset"}); text_offset starts at `offset`.
nlohmann::json chat_logprobs_json(const tokenizer::Tokenizer& tok, const std::vector<engine::TokenLogprob>& lps);
nlohmann::json completion_logprobs_json(const tokenizer::Tokenizer& tok, const std::vector<engine::TokenLogprob>& lps,
                                        int64_t& offset);
// Appends b's arrays to a (completions logprobs).
void merge_completion_logprobs(nlohmann::json& a, const nlohmann::json& b);

// JSON text that never throws on odd bytes (invalid UTF-8 is replaced).
std::string dump(const nlohmann::json& j);

}  // namespace dsinfer::serve
