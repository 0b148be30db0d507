// Speculative decoding in the step (engine/mtp_drafter.h): the MTP pass after each forward, and
// the verification of the drafts a step fed.
#include "engine/engine.h"

#include <algorithm>

#include "base/timer.h"

namespace dsinfer::engine {

void Engine::run_drafter() {
  for (size_t i = 0; i < step_.chunks.size(); ++i) {
    const ScheduledChunk& c = step_.chunks[i];
    Sequence& seq = *c.seq;
    const Request& r = *seq.request;
    if (!r.error.empty()) continue;
    // The rows that stand: those advance() or verified() counted into the cache, when the token
    // after the last of them is known.
    const int64_t from = c.start, n = seq.computed - c.start;
    if (n == 0 || int64_t(seq.tokens.size()) <= seq.computed) continue;
    const bool decode = c.drafts > 0 || (c.num_tokens == 1 && from >= seq.num_prompt);
    int64_t max_drafts = 0;
    if (seq.finish == FinishReason::kNone && !r.params.return_logits &&
        seq.computed + 1 == int64_t(seq.tokens.size())) {
      // No drafts past max_tokens (the step would emit them only to drop them) or the context.
      max_drafts = std::min({int64_t(options_.draft_tokens), r.params.max_tokens - seq.num_generated() - 1,
                             max_model_len_ - int64_t(seq.tokens.size())});
    }
    drafter_->add(seq, from, n, runner_->first_token(i), decode, max_drafts);
  }
  const double t0 = now_seconds();
  drafter_->run(grouped());
  {
    std::lock_guard lock(metrics_mu_);
    metrics_.mtp_seconds += now_seconds() - t0;
  }
}

void Engine::retire_finished() {
  defer_retire_ = false;
  for (Sequence* seq : retiring_) scheduler_->remove(seq);
  retiring_.clear();
}

int64_t Engine::process_drafts(Sequence& seq, const float* first, int64_t rows, double now) {
  const size_t V = size_t(model_->config().vocab_size);
  uint64_t compared = 0, accepted = 0;
  int64_t stood = 0;
  for (int64_t j = 0; j < rows; ++j) {
    process_token(seq, first + size_t(j) * V, 1, now);  // samples row j; may finish the sequence
    ++stood;
    if (j + 1 == rows || seq.finish != FinishReason::kNone) break;
    ++compared;
    if (seq.tokens.back() != seq.drafts[size_t(j)]) break;
    ++accepted;
  }
  std::lock_guard lock(metrics_mu_);
  metrics_.mtp_drafted += compared;
  metrics_.mtp_accepted += accepted;
  ++metrics_.mtp_verify_steps;
  metrics_.mtp_emitted += uint64_t(stood);
  return stood;
}

}  // namespace dsinfer::engine
