// The model runner: turns a scheduler step into one model::Batch (prefill chunks and decode
// tokens mixed), runs the forward over the KV cache, and returns one logits row per chunk that
// wants one (a chunk with MTP drafts: one per fed token). Buffers are sized once from the
// limits, so a step allocates nothing after warm-up.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/scheduler.h"
#include "model/deepseek.h"

namespace dsinfer::engine {

class Runner {
 public:
  Runner(model::DeepSeekModel& model, const kernels::KvCacheView& cache, int64_t max_batch_tokens, int64_t max_rows);

  // Runs the step. A chunk gets logits rows when it wants them: its last token's, or every
  // token's for a request that returns logits (SamplingParams::return_logits).
  void run(const SchedulerOutput& step);
  // The first of chunk i's logits rows and how many it has (0: none).
  int64_t first_row(size_t chunk) const { return first_row_[chunk]; }
  int64_t row_count(size_t chunk) const { return row_count_[chunk]; }
  // The forward's row of chunk i's first token (the MTP module reads the states from there).
  int64_t first_token(size_t chunk) const { return first_token_[chunk]; }
  const float* logits_row(int64_t r) const { return logits_.data() + size_t(r) * size_t(vocab_); }

 private:
  model::DeepSeekModel& model_;
  kernels::KvCacheView cache_;
  int64_t vocab_;
  model::Batch batch_;
  std::vector<float> logits_;
  std::vector<int64_t> first_row_, row_count_, first_token_;  // per chunk of the last step
};

}  // namespace dsinfer::engine
