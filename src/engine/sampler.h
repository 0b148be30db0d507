// Token selection for one sequence from its logits row: repetition, frequency and presence
// penalties, then greedy (temperature 0) or temperature sampling restricted by top_k, top_p and
// min_p, drawn from the sequence's own RNG so a seeded request is reproducible whatever else is
// in the batch. Logprobs are those of the model's raw distribution (log_softmax of the logits
// before penalties and temperature). One Sampler per step thread: it keeps scratch buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "base/error.h"
#include "engine/request.h"
#include "engine/sampling_params.h"

namespace dsinfer::engine {

// Thrown by Sampler::sample for a logits row holding NaN or Inf: the request cannot continue.
class NonFiniteLogits : public Error {
 public:
  using Error::Error;
};

struct SamplingContext {
  const SamplingParams* params = nullptr;
  const int32_t* tokens = nullptr;  // prompt followed by generated tokens
  int64_t num_prompt = 0, num_tokens = 0;
  uint64_t* rng = nullptr;
};

class Sampler {
 public:
  explicit Sampler(int64_t vocab_size);

  // `logits` is left unchanged. When lp is given and params->logprobs >= 0, fills it. Total over
  // every valid SamplingParams (any temperature, top_k, top_p, min_p); throws NonFiniteLogits
  // when the row holds NaN or Inf.
  int32_t sample(const float* logits, const SamplingContext& ctx, TokenLogprob* lp);

  // log_softmax of `logits` at `id` and its top k alternatives.
  void logprobs(const float* logits, int32_t id, int64_t k, TokenLogprob& out);

 private:
  int64_t vocab_;
  std::vector<float> work_, w_;  // logits after penalties; their softmax weights
  std::vector<int32_t> idx_, counts_;
  std::vector<uint32_t> stamp_;
  uint32_t epoch_ = 0;
  std::vector<std::pair<float, int32_t>> cand_;

  void apply_penalties(const SamplingContext& ctx);
  int32_t draw(const SamplingParams& p, uint64_t& rng);
};

}  // namespace dsinfer::engine
