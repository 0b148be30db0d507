#include "engine/sampling_params.h"

#include <cmath>

#include "base/error.h"

namespace dsinfer::engine {

bool SamplingParams::greedy() const { return !(temperature >= kGreedyTemperature); }

void SamplingParams::validate() const {
  auto finite = [](double v) { return std::isfinite(v); };
  check(finite(temperature) && temperature >= 0 && temperature <= 2, "temperature must be in [0, 2], got ", temperature);
  check(finite(top_p) && top_p > 0 && top_p <= 1, "top_p must be in (0, 1], got ", top_p);
  check(top_k >= 0, "top_k must be 0 (off) or positive, got ", top_k);
  check(finite(min_p) && min_p >= 0 && min_p <= 1, "min_p must be in [0, 1], got ", min_p);
  check(finite(frequency_penalty) && frequency_penalty >= -2 && frequency_penalty <= 2,
        "frequency_penalty must be in [-2, 2], got ", frequency_penalty);
  check(finite(presence_penalty) && presence_penalty >= -2 && presence_penalty <= 2,
        "presence_penalty must be in [-2, 2], got ", presence_penalty);
  check(finite(repetition_penalty) && repetition_penalty > 0 && repetition_penalty <= 10,
        "repetition_penalty must be in (0, 10], got ", repetition_penalty);
  check(stop.size() <= kMaxStopStrings, "at most ", kMaxStopStrings, " stop strings are allowed");
  for (const auto& s : stop) {
    check(!s.empty(), "stop strings must not be empty");
    check(s.size() <= kMaxStopBytes, "stop strings must be at most ", kMaxStopBytes, " bytes, got one of ", s.size());
  }
  check(max_tokens >= 1, "max_tokens must be at least 1, got ", max_tokens);
  check(logprobs >= -1 && logprobs <= kMaxTopLogprobs, "top_logprobs must be in [0, ", kMaxTopLogprobs, "], got ", logprobs);
  check(n >= 1 && n <= kMaxChoices, "n must be in [1, ", kMaxChoices, "], got ", n);
}

}  // namespace dsinfer::engine
