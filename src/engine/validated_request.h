// A request checked against the engine's limits: the only thing Engine::submit queues. Every
// path validates once, where the request enters — the HTTP protocol (serve/protocol.cpp, which
// turns an InvalidRequest into a 400 naming the field) or Engine::submit(prompt, params) for the
// command-line tools — and nothing below checks the same limits again: the scheduler, the runner
// and the model trust what they are given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/sampling_params.h"

namespace dsinfer::engine {

struct RequestLimits {
  int64_t vocab_size = 0;          // token ids in [0, vocab_size)
  int64_t max_model_len = 0;       // prompt + generated tokens
  int64_t kv_capacity_tokens = 0;  // what the KV pool can hold for one request
};

// What is wrong with a request, and which field says so (the API's name for it: "temperature",
// "prompt", "max_tokens", "top_logprobs", ...). code: OpenAI's error code where one applies
// ("context_length_exceeded").
class InvalidRequest : public Error {
 public:
  InvalidRequest(std::string field, std::string message, std::string code = {})
      : Error(std::move(message)), field(std::move(field)), code(std::move(code)) {}
  std::string field, code;
};

class ValidatedRequest {
 public:
  const std::vector<int32_t>& prompt() const { return prompt_; }
  const SamplingParams& params() const { return params_; }
  // For Engine::submit, which takes the request over.
  std::vector<int32_t> take_prompt() && { return std::move(prompt_); }
  // The same request asking for its first token of one choice (a disaggregated prefill's share):
  // fewer tokens and choices than a valid request asked for are valid too, so nothing is checked.
  ValidatedRequest first_token_only() const {
    ValidatedRequest r = *this;
    r.params_.n = 1;
    r.params_.max_tokens = 1;
    return r;
  }

 private:
  friend ValidatedRequest validate_request(const RequestLimits&, std::vector<int32_t>, SamplingParams);
  ValidatedRequest(std::vector<int32_t> prompt, SamplingParams params)
      : prompt_(std::move(prompt)), params_(std::move(params)) {}
  std::vector<int32_t> prompt_;
  SamplingParams params_;
};

// Checks every sampling field's range, the prompt's ids, its length and max_tokens against the
// context and the KV pool (against the room left: a max_tokens near 2^63 cannot overflow past
// it). Throws InvalidRequest for the first problem.
ValidatedRequest validate_request(const RequestLimits& limits, std::vector<int32_t> prompt, SamplingParams params);

}  // namespace dsinfer::engine
