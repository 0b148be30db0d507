// The model runner: turns a scheduler step into one model::Batch (prefill chunks and decode
// tokens mixed), runs the forward, and returns one logits row per chunk that wants one. Buffers
// are sized once from the limits, so a step allocates nothing after warm-up.
#pragma once

#include <cstdint>
#include <vector>

#include "cache/block_manager.h"
#include "engine/scheduler.h"
#include "model/deepseek.h"

namespace dsinfer::engine {

class Runner {
 public:
  Runner(model::DeepSeekModel& model, cache::BlockManager& blocks, int64_t max_batch_tokens, int64_t max_rows);

  // Runs the step. Row r of logits() belongs to the r-th chunk with wants_logits.
  void run(const SchedulerOutput& step);
  const float* logits_row(int64_t r) const { return logits_.data() + size_t(r) * size_t(vocab_); }

 private:
  model::DeepSeekModel& model_;
  cache::BlockManager& blocks_;
  int64_t vocab_;
  model::Batch batch_;
  std::vector<float> logits_;
};

}  // namespace dsinfer::engine
