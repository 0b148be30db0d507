#include "engine/validated_request.h"

#include <cmath>

namespace dsinfer::engine {

namespace {

template <typename... Parts>
void require(bool ok, const char* field, Parts&&... parts) {
  if (!ok) throw InvalidRequest(field, str(std::forward<Parts>(parts)...));
}

void check_sampling(const SamplingParams& p, int64_t vocab) {
  auto finite = [](double v) { return std::isfinite(v); };
  require(finite(p.temperature) && p.temperature >= 0 && p.temperature <= 2, "temperature",
          "temperature must be in [0, 2], got ", p.temperature);
  require(finite(p.top_p) && p.top_p > 0 && p.top_p <= 1, "top_p", "top_p must be in (0, 1], got ", p.top_p);
  require(p.top_k >= 0, "top_k", "top_k must be 0 (off) or positive, got ", p.top_k);
  require(finite(p.min_p) && p.min_p >= 0 && p.min_p <= 1, "min_p", "min_p must be in [0, 1], got ", p.min_p);
  require(finite(p.frequency_penalty) && p.frequency_penalty >= -2 && p.frequency_penalty <= 2, "frequency_penalty",
          "frequency_penalty must be in [-2, 2], got ", p.frequency_penalty);
  require(finite(p.presence_penalty) && p.presence_penalty >= -2 && p.presence_penalty <= 2, "presence_penalty",
          "presence_penalty must be in [-2, 2], got ", p.presence_penalty);
  require(finite(p.repetition_penalty) && p.repetition_penalty > 0 && p.repetition_penalty <= 10, "repetition_penalty",
          "repetition_penalty must be in (0, 10], got ", p.repetition_penalty);
  require(p.stop.size() <= kMaxStopStrings, "stop", "at most ", kMaxStopStrings, " stop strings are allowed");
  for (const auto& s : p.stop) {
    require(!s.empty(), "stop", "stop strings must not be empty");
    require(s.size() <= kMaxStopBytes, "stop", "stop strings must be at most ", kMaxStopBytes, " bytes, got one of ",
            s.size());
  }
  for (int32_t id : p.stop_token_ids)
    require(id >= 0 && id < vocab, "stop_token_ids", "stop token id ", id, " is outside the vocabulary [0, ", vocab, ")");
  require(p.max_tokens >= 1, "max_tokens", "max_tokens must be at least 1, got ", p.max_tokens);
  require(p.logprobs >= -1 && p.logprobs <= kMaxTopLogprobs, "top_logprobs", "top_logprobs must be in [0, ",
          kMaxTopLogprobs, "], got ", p.logprobs);
  require(p.n >= 1 && p.n <= kMaxChoices, "n", "n must be in [1, ", kMaxChoices, "], got ", p.n);
  for (int32_t id : p.forced_tokens)
    require(id >= 0 && id < vocab, "forced_tokens", "forced token id ", id, " is outside the vocabulary [0, ", vocab, ")");
}

}  // namespace

ValidatedRequest validate_request(const RequestLimits& limits, std::vector<int32_t> prompt, SamplingParams params) {
  check_sampling(params, limits.vocab_size);
  require(!prompt.empty(), "prompt", "the prompt is empty");
  for (int32_t id : prompt)
    require(id >= 0 && id < limits.vocab_size, "prompt", "token id ", id, " is outside the vocabulary [0, ",
            limits.vocab_size, ")");
  const int64_t len = int64_t(prompt.size());
  if (len >= limits.max_model_len)
    throw InvalidRequest("prompt",
                         str("the prompt has ", len, " tokens but the model's context is ", limits.max_model_len, " tokens"),
                         "context_length_exceeded");
  // Against the room left, never len + max_tokens: near 2^63 the sum overflows and passes.
  if (params.max_tokens > limits.max_model_len - len)
    throw InvalidRequest("max_tokens",
                         str("the prompt (", len, " tokens) plus max_tokens (", params.max_tokens,
                             ") exceeds the model's context of ", limits.max_model_len, " tokens"),
                         "context_length_exceeded");
  if (params.max_tokens > limits.kv_capacity_tokens - len)
    throw InvalidRequest("max_tokens",
                         str("the prompt (", len, " tokens) plus max_tokens (", params.max_tokens,
                             ") exceeds the KV cache (", limits.kv_capacity_tokens, " tokens); raise --kv-cache-gb"),
                         "context_length_exceeded");
  return ValidatedRequest(std::move(prompt), std::move(params));
}

}  // namespace dsinfer::engine
