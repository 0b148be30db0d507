// Per-request sampling settings, with OpenAI/DeepSeek API semantics and defaults in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dsinfer::engine {

struct SamplingParams {
  double temperature = 1.0;        // below kGreedyTemperature (0 included): greedy
  double top_p = 1.0;              // nucleus mass kept, (0, 1]
  int64_t top_k = 0;               // 0: off
  double min_p = 0.0;              // drop tokens below min_p * p(most likely)
  std::optional<uint64_t> seed;    // same seed, same prompt, same params -> same samples
  double frequency_penalty = 0.0;  // OpenAI: logit -= count * f   (generated tokens)
  double presence_penalty = 0.0;   // OpenAI: logit -= (count > 0) * p
  double repetition_penalty = 1.0; // CTRL/HF: prompt and generated tokens, divide positive logits
  std::vector<std::string> stop;   // stop strings: matched on the text, never returned
  std::vector<int32_t> stop_token_ids;
  int64_t max_tokens = 16;
  bool ignore_eos = false;
  int64_t logprobs = -1;  // -1: none; k >= 0: the chosen token's logprob plus the top k
  int64_t n = 1;

  // Tool fields (dsinfer logits / generate; not part of the HTTP API):
  // the first generated tokens are these instead of sampled ones (teacher forcing: the decode
  // path over a known sequence) ...
  std::vector<int32_t> forced_tokens;
  // ... and every logits row computed for the request comes back in the updates (all prompt
  // positions, then one per generated token), for comparison with the reference.
  bool return_logits = false;

  // Ranges are checked once per request, where it enters: engine/validated_request.h.
  // Temperatures this small pick the most likely token with certainty in any real distribution,
  // and 1 / temperature would overflow a float below ~3e-39: they are greedy.
  bool greedy() const;
  bool has_penalties() const { return repetition_penalty != 1.0 || frequency_penalty != 0.0 || presence_penalty != 0.0; }
};

// The smallest temperature that is sampled (vLLM's threshold too): 1 / 1e-5 scales logits by
// 1e5, far from overflow.
inline constexpr double kGreedyTemperature = 1e-5;
inline constexpr int64_t kMaxTopLogprobs = 20;
inline constexpr int64_t kMaxChoices = 16;
// Stop strings per request (DeepSeek's API allows 16, OpenAI's 4) and bytes per string: every
// generated token is matched against each, so both bound the per-token cost (StopMatcher).
inline constexpr size_t kMaxStopStrings = 16;
inline constexpr size_t kMaxStopBytes = 1024;

}  // namespace dsinfer::engine
