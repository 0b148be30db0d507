#include "engine/runner.h"

namespace dsinfer::engine {

Runner::Runner(model::DeepSeekModel& model, const kernels::KvCacheView& cache, int64_t max_batch_tokens, int64_t max_rows)
    : model_(model), cache_(cache), vocab_(model.config().vocab_size) {
  batch_.tokens.reserve(size_t(max_batch_tokens));
  batch_.seqs.reserve(size_t(max_rows));
  batch_.logits_rows.reserve(size_t(max_rows));
  logits_.resize(size_t(max_rows) * size_t(vocab_));
  first_row_.reserve(size_t(max_rows));
  row_count_.reserve(size_t(max_rows));
  first_token_.reserve(size_t(max_rows));
}

void Runner::run(const SchedulerOutput& step) {
  batch_.clear();
  first_row_.clear();
  row_count_.clear();
  first_token_.clear();
  for (const auto& c : step.chunks) {
    const Sequence& s = *c.seq;
    const auto rows = s.request->params.return_logits ? model::Batch::Logits::kAll
                      : c.wants_logits                 ? model::Batch::Logits::kLast
                                                       : model::Batch::Logits::kNone;
    const size_t before = batch_.logits_rows.size();
    first_token_.push_back(int64_t(batch_.tokens.size()));
    if (c.drafts > 0) {
      // The last token and its drafts, each a decode row of its own at consecutive positions:
      // the attention takes them as one query group (model/attention.h), and every row's logits
      // are those that a step without drafts would give at that position, bit for bit.
      batch_.add(&s.tokens.back(), 1, s.computed, s.blocks.data(), model::Batch::Logits::kLast, true);
      for (int64_t j = 0; j < c.drafts; ++j)
        batch_.add(&s.drafts[size_t(j)], 1, s.computed + 1 + j, s.blocks.data(), model::Batch::Logits::kLast, true);
    } else {
      // A decode step is a generated token's; a one-token prompt chunk stays a prompt chunk.
      batch_.add(s.tokens.data() + s.computed, c.num_tokens, s.computed, s.blocks.data(), rows,
                 c.num_tokens == 1 && s.computed >= s.num_prompt);
    }
    first_row_.push_back(int64_t(before));
    row_count_.push_back(int64_t(batch_.logits_rows.size() - before));
  }
  if (batch_.logits_rows.size() * size_t(vocab_) > logits_.size()) logits_.resize(batch_.logits_rows.size() * size_t(vocab_));
  model_.forward(batch_, cache_, logits_.data());
}

}  // namespace dsinfer::engine
