// The scheduler (nano-vllm's split): continuous batching with chunked prefill. Every step it
//  1. continues the running sequences oldest first — a decode token each, or the next chunk of an
//     unfinished prefill — and when KV blocks run out preempts the newest running sequence (its
//     blocks are released, it goes back to the front of the queue and is recomputed later, mostly
//     from the prefix cache);
//  2. then admits waiting sequences first come, first served while the step's token budget
//     (max_batch_tokens), max_running and free blocks allow, reusing their cached prefix.
// A waiting sequence that does not fit stops admission, so nobody overtakes the head of the queue.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "cache/block_manager.h"
#include "engine/engine_options.h"
#include "engine/sequence.h"

namespace dsinfer::engine {

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int64_t num_tokens = 0;  // tokens fed this step, from seq->computed
  bool wants_logits = false;  // the chunk ends at the sequence's last token: sample after it
  // Of num_tokens, the MTP drafts fed after the sequence's last token. Such a chunk is not
  // advanced with the others: how many of its tokens stand is known after sampling (verified()).
  int64_t drafts = 0;
  int64_t start = 0;  // seq->computed when scheduled: the position of the first token fed
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;
  int64_t num_tokens = 0;
  int64_t preempted = 0;
};

class Scheduler {
 public:
  // Reads options.max_batch_tokens and options.max_running.
  Scheduler(cache::BlockManager& blocks, const EngineOptions& options);

  void add(Sequence* seq);        // to the back of the queue
  void add_front(Sequence* seq);  // to the front (a preempted or forked sequence)
  // Fills `out` for the next step (cleared first).
  void schedule(SchedulerOutput& out);
  // After the step: the scheduled chunks are in the cache now (those without drafts).
  void advance(const SchedulerOutput& out);
  // A chunk with drafts after sampling: its first `fed` tokens stand (the last token and the
  // drafts equal to what was sampled); the rows after them are overwritten later.
  void verified(Sequence* seq, int64_t fed);
  // Takes a sequence out (finished or cancelled) and releases its blocks.
  void remove(Sequence* seq);
  // Starts `child`, another choice of parent's request, from the parent's first `tokens` tokens
  // of KV (n > 1): full blocks shared, a partial last block copied. True: the child runs now and
  // samples its first token from the parent's logits. False (no block for the copy): it waits
  // at the front of the queue and is recomputed later, mostly from the prefix cache.
  bool fork(const Sequence& parent, Sequence& child, int64_t tokens);
  // Disaggregated decoding: blocks for the whole prompt of `seq`, whose KV another instance
  // computes (false: no room). Once it has arrived, imported() marks its first `computed`
  // positions as in the cache; add() then runs the sequence from there.
  bool reserve_prompt(Sequence& seq);
  void imported(Sequence& seq, int64_t computed);

  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  bool idle() const { return waiting_.empty() && running_.empty(); }
  int64_t total_preemptions() const { return preemptions_; }

 private:
  cache::BlockManager& blocks_;
  int64_t max_batch_tokens_, max_running_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // in admission order: oldest first
  std::vector<Sequence*> order_;    // schedule()'s snapshot of running_
  int64_t preemptions_ = 0;

  void preempt(Sequence* seq);
  void add_running(Sequence* seq);
  // A sequence with one token to compute (a decode step) feeds its drafts with it (n, the chunk's
  // tokens, grows by them), as many as the step's token budget leaves room for, and none when
  // their rows would need a block the pool lacks; returns how many.
  int64_t feed_drafts(Sequence& seq, int64_t budget, int64_t& n);
};

}  // namespace dsinfer::engine
