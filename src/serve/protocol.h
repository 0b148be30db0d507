// The OpenAI/DeepSeek request and response shapes: JSON bodies of /v1/chat/completions and
// /v1/completions parsed and validated into an engine request (throwing ApiError with the
// offending field as `param`), and the pieces of their replies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "engine/sampling_params.h"
#include "tokenizer/tokenizer.h"

namespace dsinfer::serve {

enum class Endpoint { kChat, kCompletion };

struct ProtocolContext {
  const tokenizer::Tokenizer* tokenizer = nullptr;
  std::vector<std::string> model_names;  // accepted values of "model"; the first is reported
  int64_t max_model_len = 0;
  int64_t kv_capacity_tokens = 0;
};

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  std::vector<int32_t> prompt;
  engine::SamplingParams params;
  bool stream = false;
  bool include_usage = false;
  bool want_logprobs = false;
  bool prompt_opens_reasoning = false;  // the rendered prompt ends inside <think>
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
