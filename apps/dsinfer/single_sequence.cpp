#include "single_sequence.h"

#include "base/error.h"

namespace dsinfer::app {

SingleSequence::SingleSequence(model::DeepSeekModel& m, int64_t max_tokens)
    : model_(m),
      pool_(m.cache_spec(), std::max<int64_t>(1, (max_tokens + m.cache_spec().block_size - 1) / m.cache_spec().block_size)) {}

std::vector<float> SingleSequence::feed(const std::vector<int32_t>& ids, bool all_logits) {
  int64_t need = pool_.blocks_for(length_ + int64_t(ids.size())) - int64_t(blocks_.size());
  check(need <= 0 || pool_.allocate(need, blocks_), "sequence outgrew its KV pool");
  model::Batch batch;
  batch.add(ids.data(), int64_t(ids.size()), length_, blocks_.data(), all_logits);
  std::vector<float> logits(batch.logits_rows.size() * size_t(model_.config().vocab_size));
  model_.forward(batch, pool_.view(), logits.data());
  length_ += int64_t(ids.size());
  return logits;
}

}  // namespace dsinfer::app
