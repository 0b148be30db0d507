// Disaggregated prefill and decode (engine/kv_transfer.h): a prefill request's KV leaves layer by
// layer as the forward writes it; a decode request reserves blocks for the prompt, waits for its
// KV, and continues from the prefill side's first token.
#include "engine/engine.h"

#include <algorithm>

#include "base/log.h"

namespace dsinfer::engine {

void Engine::ExportObserver::on_layer_cached(int64_t layer) {
  for (const ScheduledChunk& c : step_.chunks) {
    const Sequence& seq = *c.seq;
    if (!seq.request->export_to || seq.index != 0 || seq.computed >= seq.num_prompt) continue;
    const int64_t rows = std::min(seq.computed + c.num_tokens, seq.num_prompt);
    seq.request->export_to->layer_written(layer, cache_.layer(layer), seq.blocks.data(), rows);
  }
}

bool Engine::reserve_import(Request& r) {
  Sequence& seq = *r.seqs[0];
  if (!scheduler_->reserve_prompt(seq)) {
    const std::string why = str("no room in the KV cache for the prompt (", blocks_->blocks_for(seq.num_prompt),
                                " blocks; ", blocks_->available(), " available)");
    r.import_from->fail(why);
    fail_request(r, why);
    return false;
  }
  r.import_from->reserved(pool_->view(), seq.blocks);
  return true;
}

void Engine::poll_imports(double now) {
  for (size_t i = 0; i < importing_.size();) {
    Request& r = *importing_[i];
    KvImport& im = *r.import_from;
    if (im.state() == KvImport::State::kReserved && now > im.deadline())
      im.fail("the prefill side went silent: no KV and no heartbeat for --kv-transfer-timeout");
    const KvImport::State st = im.state();
    if (st != KvImport::State::kReady && st != KvImport::State::kFailed) {
      ++i;
      continue;
    }
    importing_.erase(importing_.begin() + long(i));
    if (st == KvImport::State::kReady) {
      start_import(r, now);
    } else {
      log_warn("request ", r.id, " failed: ", im.error());
      fail_request(r, im.error());
    }
  }
}

// The prompt's KV is in the reserved blocks. Usually the prefill side's first token continues it
// at once; a request that needs the last prompt position's logits here (n > 1 choices fork from
// them, or a tool that returns logits) recomputes that one position instead, which gives the same
// bits as the prefill side would (a prompt's logits do not depend on where it was cut).
void Engine::start_import(Request& r, double now) {
  Sequence& seq = *r.seqs[0];
  const FirstToken first = r.import_from->first();
  r.cached_tokens = first.cached_tokens;
  r.disk_cached_tokens = first.disk_cached_tokens;  // usage says what the prefill side's disk tier gave
  const bool recompute_last = r.params.n > 1 || r.params.return_logits || !r.params.forced_tokens.empty();
  scheduler_->imported(seq, recompute_last ? seq.num_prompt - 1 : seq.num_prompt);
  if (!recompute_last) {
    seq.rng = first.rng;
    take_token(seq, first.id, first.logprob ? &*first.logprob : nullptr, now);
    // The prefill side's MTP drafts after that token: its first step verifies them, as one engine
    // would have, within this request's limits (the prefill side ran with max_tokens 1).
    if (drafter_ && seq.finish == FinishReason::kNone) {
      const int64_t n = std::min(int64_t(first.drafts.size()), draft_limit(seq));
      seq.drafts.assign(first.drafts.begin(), first.drafts.begin() + std::max<int64_t>(0, n));
    }
  }
  if (seq.state == SeqState::kFinished)
    finish_request_if_done(r);
  else
    scheduler_->add(&seq);
}

}  // namespace dsinfer::engine
