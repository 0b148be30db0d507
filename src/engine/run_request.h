// One request through the engine, waited for: how `dsinfer generate` and `dsinfer logits` take
// the same path as the server's requests (submit, the step loop, the stream) and collect what
// came back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace dsinfer::engine {

struct RequestResult {
  std::vector<std::vector<int32_t>> tokens;  // per choice, generated tokens
  std::vector<std::string> text;             // per choice
  std::vector<FinishReason> finish;          // per choice
  // SamplingParams::return_logits: choice 0's logits rows [logits_rows, vocab], position order.
  std::vector<float> logits;
  int64_t logits_rows = 0;
  Usage usage;
  std::string error;  // non-empty when the engine failed the request
  double first_token_s = 0, done_s = 0;  // seconds after submit
};

// Submits and waits until the request is finished. Throws what submit() throws.
RequestResult run_request(Engine& engine, std::vector<int32_t> prompt, const SamplingParams& params);

}  // namespace dsinfer::engine
