#include "engine/scheduler.h"

#include <algorithm>

#include "base/error.h"

namespace dsinfer::engine {

Scheduler::Scheduler(cache::BlockManager& blocks, const EngineOptions& options)
    : blocks_(blocks), max_batch_tokens_(options.max_batch_tokens), max_running_(options.max_running) {
  // The options were checked where they entered (Engine's constructor).
  // Room for every running sequence plus the choices a prefill may fork, so steps never grow them.
  running_.reserve(size_t(max_running_ + kMaxChoices));
  order_.reserve(size_t(max_running_ + kMaxChoices));
}

void Scheduler::add(Sequence* seq) {
  seq->state = SeqState::kWaiting;
  waiting_.push_back(seq);
}

void Scheduler::add_front(Sequence* seq) {
  seq->state = SeqState::kWaiting;
  waiting_.push_front(seq);
}

void Scheduler::add_running(Sequence* seq) {
  seq->state = SeqState::kRunning;
  running_.push_back(seq);
}

bool Scheduler::fork(const Sequence& parent, Sequence& child, int64_t tokens) {
  if (!blocks_.fork(parent.blocks, tokens, child.blocks)) {
    add_front(&child);
    return false;
  }
  child.computed = tokens;
  add_running(&child);
  return true;
}

bool Scheduler::reserve_prompt(Sequence& seq) {
  return blocks_.allocate(blocks_.blocks_for(seq.num_prompt), seq.blocks);
}

void Scheduler::imported(Sequence& seq, int64_t computed) {
  seq.computed = computed;
  blocks_.commit(seq.tokens.data(), computed, seq.blocks);  // now a prefix other prompts may hit
}

void Scheduler::preempt(Sequence* seq) {
  blocks_.release(seq->blocks);
  seq->computed = 0;
  seq->drafts.clear();  // its recompute drafts anew
  ++preemptions_;
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  add_front(seq);
}

void Scheduler::schedule(SchedulerOutput& out) {
  out.chunks.clear();
  out.num_tokens = 0;
  out.preempted = 0;
  int64_t budget = max_batch_tokens_;

  // 1. Running sequences, oldest first. Iterate over a snapshot: preemption edits running_.
  order_.assign(running_.begin(), running_.end());
  for (Sequence* seq : order_) {
    if (budget == 0) break;
    if (seq->state != SeqState::kRunning) continue;  // preempted below as someone's victim
    int64_t n = std::min(seq->uncomputed(), budget);
    const bool wants_logits = seq->computed + n == int64_t(seq->tokens.size());
    const int64_t drafts = feed_drafts(*seq, budget, n);
    int64_t need = blocks_.blocks_for(seq->computed + n) - int64_t(seq->blocks.size());
    bool self_preempted = false;
    while (need > blocks_.available()) {
      Sequence* victim = running_.back();  // the newest
      preempt(victim);
      ++out.preempted;
      // A victim already scheduled this step must not run: drop its chunk.
      for (size_t i = 0; i < out.chunks.size(); ++i) {
        if (out.chunks[i].seq == victim) {
          budget += out.chunks[i].num_tokens;
          out.num_tokens -= out.chunks[i].num_tokens;
          out.chunks.erase(out.chunks.begin() + long(i));
          break;
        }
      }
      if (victim == seq) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) continue;
    if (need > 0) blocks_.allocate(need, seq->blocks);
    out.chunks.push_back({seq, n, wants_logits, drafts, seq->computed});
    out.num_tokens += n;
    budget -= n;
  }
  if (out.preempted > 0) return;  // short of blocks: admit nobody this step

  // 2. Admit from the queue, first come first served.
  while (!waiting_.empty() && budget > 0 && int64_t(running_.size()) < max_running_) {
    Sequence* seq = waiting_.front();
    if (seq->blocks.empty())
      seq->computed = blocks_.match_prefix(seq->tokens.data(), int64_t(seq->tokens.size()), 1, seq->blocks);
    int64_t n = std::min(seq->uncomputed(), budget);
    const bool wants_logits = seq->computed + n == int64_t(seq->tokens.size());
    // Drafts only an imported sequence brings (a prefill instance's, after its first token):
    // new and preempted sequences have none.
    const int64_t drafts = feed_drafts(*seq, budget, n);
    const int64_t need = blocks_.blocks_for(seq->computed + n) - int64_t(seq->blocks.size());
    if (need > blocks_.available()) {
      // Give the matched prefix back (it stays cached) and wait for blocks.
      blocks_.release(seq->blocks);
      seq->computed = 0;
      seq->drafts.clear();
      break;
    }
    blocks_.allocate(need, seq->blocks);
    waiting_.pop_front();
    add_running(seq);
    out.chunks.push_back({seq, n, wants_logits, drafts, seq->computed});
    out.num_tokens += n;
    budget -= n;
  }
}

int64_t Scheduler::feed_drafts(Sequence& seq, int64_t budget, int64_t& n) {
  if (seq.uncomputed() != 1 || seq.drafts.empty()) return 0;
  seq.drafts.resize(size_t(std::min<int64_t>(int64_t(seq.drafts.size()), budget - 1)));
  const int64_t k = int64_t(seq.drafts.size());
  if (blocks_.blocks_for(seq.computed + n + k) - int64_t(seq.blocks.size()) > blocks_.available()) {
    seq.drafts.clear();  // a guess: no one is preempted, nor an imported prompt's KV given back, for it
    return 0;
  }
  n += k;
  return k;
}

void Scheduler::advance(const SchedulerOutput& out) {
  for (const auto& c : out.chunks) {
    if (c.drafts > 0) continue;
    c.seq->computed += c.num_tokens;
    blocks_.commit(c.seq->tokens.data(), c.seq->computed, c.seq->blocks);
  }
}

void Scheduler::verified(Sequence* seq, int64_t fed) {
  seq->computed += fed;
  blocks_.commit(seq->tokens.data(), seq->computed, seq->blocks);
}

void Scheduler::remove(Sequence* seq) {
  blocks_.release(seq->blocks);
  auto r = std::find(running_.begin(), running_.end(), seq);
  if (r != running_.end()) running_.erase(r);
  auto w = std::find(waiting_.begin(), waiting_.end(), seq);
  if (w != waiting_.end()) waiting_.erase(w);
  seq->state = SeqState::kFinished;
}

}  // namespace dsinfer::engine
