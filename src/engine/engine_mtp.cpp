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
    // Drafts only after a generated token whose row this step computed: not for a prompt the
    // step's budget cut one token short, whose last token must run as a prompt chunk (its logits
    // do not depend on where the prompt was cut, and n > 1 choices fork from them).
    const bool after_token = seq.computed >= seq.num_prompt && seq.computed + 1 == int64_t(seq.tokens.size());
    // A prefill instance's request ends at its first token (max_tokens 1) but drafts for the
    // decode instance, which trims them to the request's own limits (start_import).
    const bool exported_first = r.export_to && seq.index == 0 && seq.finish == FinishReason::kLength;
    int64_t max_drafts = 0;
    if (after_token && !r.params.return_logits && seq.finish == FinishReason::kNone)
      max_drafts = draft_limit(seq);
    else if (after_token && exported_first)
      max_drafts = std::min<int64_t>(options_.draft_tokens, max_model_len_ - int64_t(seq.tokens.size()));
    drafter_->add(seq, from, n, runner_->first_token(i), decode, max_drafts);
  }
  const double t0 = now_seconds();
  drafter_->run(grouped());
  {
    std::lock_guard lock(metrics_mu_);
    metrics_.mtp_seconds += now_seconds() - t0;
  }
  export_mtp_rows();
}

int64_t Engine::draft_limit(const Sequence& seq) const {
  // No drafts past max_tokens (the step would emit them only to drop them) or the context.
  return std::min({int64_t(options_.draft_tokens), seq.request->params.max_tokens - seq.num_generated() - 1,
                   max_model_len_ - int64_t(seq.tokens.size())});
}

void Engine::export_mtp_rows() {
  const int64_t layer = model_->config().num_hidden_layers;  // the module's own KV layer
  for (const ScheduledChunk& c : step_.chunks) {
    const Sequence& seq = *c.seq;
    const Request& r = *seq.request;
    if (!r.export_to || seq.index != 0 || !r.error.empty() || c.start >= seq.num_prompt) continue;
    // run_drafter wrote the module's rows of every prompt position computed so far (the last one
    // once the first token is known), so they leave chunk by chunk as the main layers do.
    r.export_to->layer_written(layer, pool_->view().layer(layer), seq.blocks.data(),
                               std::min(seq.computed, seq.num_prompt));
  }
  for (PendingFirst& p : pending_firsts_) {
    if (!p.seq->request->error.empty()) continue;  // failed this step: its export is abandoned
    p.first.drafts = p.seq->drafts;
    p.seq->request->export_to->prefill_done(p.first);
  }
  pending_firsts_.clear();
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
