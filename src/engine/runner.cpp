#include "engine/runner.h"

namespace dsinfer::engine {

Runner::Runner(model::DeepSeekModel& model, cache::BlockManager& blocks, int64_t max_batch_tokens, int64_t max_rows)
    : model_(model), blocks_(blocks), vocab_(model.config().vocab_size) {
  batch_.tokens.reserve(size_t(max_batch_tokens));
  batch_.seqs.reserve(size_t(max_rows));
  batch_.logits_rows.reserve(size_t(max_rows));
  logits_.resize(size_t(max_rows) * size_t(vocab_));
}

void Runner::run(const SchedulerOutput& step) {
  batch_.tokens.clear();
  batch_.seqs.clear();
  batch_.logits_rows.clear();
  for (const auto& c : step.chunks) {
    const Sequence& s = *c.seq;
    int64_t first = int64_t(batch_.tokens.size());
    batch_.tokens.insert(batch_.tokens.end(), s.tokens.begin() + s.computed, s.tokens.begin() + s.computed + c.num_tokens);
    batch_.seqs.push_back({first, c.num_tokens, s.computed, s.blocks.data()});
    if (c.wants_logits) batch_.logits_rows.push_back(first + c.num_tokens - 1);
  }
  if (batch_.logits_rows.size() * size_t(vocab_) > logits_.size()) logits_.resize(batch_.logits_rows.size() * size_t(vocab_));
  model_.forward(batch_, blocks_.view(), logits_.data());
}

}  // namespace dsinfer::engine
