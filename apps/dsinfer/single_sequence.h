// One sequence through the model with its own small KV pool: the prefill-then-decode loop behind
// `dsinfer logits` and `dsinfer generate` (the server's engine batches many of these).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cache/kv_pool.h"
#include "model/deepseek.h"

namespace dsinfer::app {

class SingleSequence {
 public:
  // Room for max_tokens tokens in total.
  SingleSequence(model::DeepSeekModel& m, int64_t max_tokens);

  // Feeds `ids` in one forward; returns logits of every fed position ({n, vocab}) or only the
  // last ({1, vocab}).
  std::vector<float> feed(const std::vector<int32_t>& ids, bool all_logits);
  int64_t length() const { return length_; }

 private:
  model::DeepSeekModel& model_;
  cache::KvPool pool_;
  std::vector<int32_t> blocks_;
  int64_t length_ = 0;
};

}  // namespace dsinfer::app
