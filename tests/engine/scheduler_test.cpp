#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>

namespace dsinfer::engine {
namespace {

// The scheduler's two limits, the rest of the engine's options at their defaults.
EngineOptions limits(int64_t max_batch_tokens, int64_t max_running) {
  EngineOptions o;
  o.max_batch_tokens = max_batch_tokens;
  o.max_running = max_running;
  return o;
}

struct SchedulerFixture : ::testing::Test {
  cache::KvPool pool{kernels::KvCacheSpec{1, 4, 0, DType::kF32}, 8};  // 8 blocks of 64 tokens
  cache::BlockManager bm{pool, 1};
  std::vector<std::unique_ptr<Sequence>> seqs;

  Sequence* make(int64_t prompt, int32_t start = 0) {
    auto s = std::make_unique<Sequence>();
    s->id = seqs.size();
    s->tokens.resize(size_t(prompt));
    std::iota(s->tokens.begin(), s->tokens.end(), start);
    s->num_prompt = prompt;
    seqs.push_back(std::move(s));
    return seqs.back().get();
  }
  // Two prompts of `prompt` tokens (4 blocks each: the whole pool), prefilled together in one
  // step that samples their first tokens; the older one first.
  std::pair<Sequence*, Sequence*> fill_pool_with_two(Scheduler& sch, int64_t prompt, SchedulerOutput& out) {
    Sequence* old = make(prompt);
    Sequence* young = make(prompt, 10000);
    sch.add(old);
    sch.add(young);
    sch.schedule(out);
    EXPECT_EQ(out.chunks.size(), 2u);
    finish_step(sch, out);
    EXPECT_EQ(bm.available(), 0);
    return {old, young};
  }
  // What the engine does after a step: the chunk is computed; a finished chunk samples a token.
  void finish_step(Scheduler& sch, const SchedulerOutput& out) {
    sch.advance(out);
    for (auto& c : out.chunks)
      if (c.wants_logits) c.seq->tokens.push_back(1);
  }
};

TEST_F(SchedulerFixture, DecodeStepsFeedTheDraftsWithinTheBudgetAndCountOnlyWhatStood) {
  Scheduler sch(bm, limits(5, 8));
  Sequence* a = make(63);
  Sequence* b = make(10, 1000);
  sch.add(a);
  SchedulerOutput out;
  sch.schedule(out);  // a's prompt: 5 tokens of budget at a time
  while (a->uncomputed() > 1 || a->tokens.size() == 63) {
    finish_step(sch, out);
    sch.schedule(out);
  }
  ASSERT_EQ(a->computed, 63);
  ASSERT_EQ(out.chunks.size(), 1u);
  finish_step(sch, out);  // its first token
  a->drafts = {7, 8, 9};
  sch.add(b);
  sch.schedule(out);
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].seq, a);
  EXPECT_EQ(out.chunks[0].num_tokens, 4);  // the last token and three drafts
  EXPECT_EQ(out.chunks[0].drafts, 3);
  EXPECT_TRUE(out.chunks[0].wants_logits);
  EXPECT_EQ(a->blocks.size(), 2u) << "positions 64..67 need a second block";
  EXPECT_EQ(out.chunks[1].num_tokens, 1);  // what the budget left for b
  sch.advance(out);  // a chunk with drafts is not counted in here ...
  EXPECT_EQ(a->computed, 64);
  a->tokens.insert(a->tokens.end(), {7, 5});
  sch.verified(a, 2);  // ... but after sampling: its last token and the draft that matched
  EXPECT_EQ(a->computed, 66);
  // A budget of 2 cuts the drafts to one.
  Scheduler tight(bm, limits(2, 8));
  Sequence* c = make(3, 2000);
  tight.add(c);
  tight.schedule(out);
  finish_step(tight, out);
  tight.schedule(out);
  finish_step(tight, out);
  c->drafts = {1, 2, 3};
  tight.schedule(out);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].num_tokens, 2);
  EXPECT_EQ(c->drafts.size(), 1u);
}

TEST_F(SchedulerFixture, ChunksPrefillUnderTheTokenBudgetAndDecodesFirst) {
  Scheduler sch(bm, limits(100, 8));
  Sequence* a = make(150);
  sch.add(a);
  SchedulerOutput out;
  sch.schedule(out);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].num_tokens, 100);
  EXPECT_FALSE(out.chunks[0].wants_logits);
  finish_step(sch, out);
  Sequence* b = make(80, 5000);
  sch.add(b);
  sch.schedule(out);
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].seq, a);
  EXPECT_EQ(out.chunks[0].num_tokens, 50);
  EXPECT_TRUE(out.chunks[0].wants_logits);
  EXPECT_EQ(out.chunks[1].seq, b);
  EXPECT_EQ(out.chunks[1].num_tokens, 50);  // what is left of the budget
  finish_step(sch, out);
  sch.schedule(out);
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].seq, a);  // a decode
  EXPECT_EQ(out.chunks[0].num_tokens, 1);
  EXPECT_EQ(out.chunks[1].num_tokens, 30);
  EXPECT_TRUE(out.chunks[1].wants_logits);
}

TEST_F(SchedulerFixture, MaxRunningLimitsAdmissionFcfs) {
  Scheduler sch(bm, limits(1000, 2));
  Sequence* s[3] = {make(10), make(10, 100), make(10, 200)};
  for (auto* x : s) sch.add(x);
  SchedulerOutput out;
  sch.schedule(out);
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].seq, s[0]);
  EXPECT_EQ(out.chunks[1].seq, s[1]);
  EXPECT_EQ(sch.num_waiting(), 1u);
  finish_step(sch, out);
  sch.remove(s[0]);
  sch.schedule(out);
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[1].seq, s[2]);
}

TEST_F(SchedulerFixture, PreemptsTheNewestWhenBlocksRunOutAndRecomputesIt) {
  Scheduler sch(bm, limits(4096, 8));
  SchedulerOutput out;
  auto [old, young] = fill_pool_with_two(sch, 4 * 64, out);  // 4 blocks each, full
  // Each now needs a fifth block for its next token: the newest gives its blocks up.
  sch.schedule(out);
  EXPECT_EQ(out.preempted, 1);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, old);
  EXPECT_EQ(young->computed, 0);
  EXPECT_EQ(young->state, SeqState::kWaiting);
  EXPECT_EQ(sch.num_waiting(), 1u);
  finish_step(sch, out);
  sch.remove(old);
  // Recompute: the prefix cache still has most of young's blocks.
  sch.schedule(out);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, young);
  EXPECT_GT(young->computed, 0);
  EXPECT_EQ(young->computed + out.chunks[0].num_tokens, int64_t(young->tokens.size()));
}

// Drafts are a guess: when their rows would need a block the pool does not have, they are
// dropped before any other sequence is preempted for them.
TEST_F(SchedulerFixture, DraftsAreDroppedBeforeAnotherSequenceIsPreempted) {
  Scheduler sch(bm, limits(4096, 8));
  SchedulerOutput out;
  auto [old, young] = fill_pool_with_two(sch, 4 * 64 - 1, out);  // a first token fills a 4th block's last row
  old->drafts = {7, 8};  // their rows would open a 5th block
  sch.schedule(out);
  EXPECT_EQ(out.preempted, 0);
  ASSERT_EQ(out.chunks.size(), 2u);
  EXPECT_EQ(out.chunks[0].seq, old);
  EXPECT_EQ(out.chunks[0].num_tokens, 1);
  EXPECT_EQ(out.chunks[0].drafts, 0);
  EXPECT_TRUE(old->drafts.empty());
  EXPECT_EQ(young->state, SeqState::kRunning);
}

TEST_F(SchedulerFixture, WaitingHeadThatDoesNotFitBlocksLaterOnes) {
  Scheduler sch(bm, limits(4096, 8));
  Sequence* big = make(6 * 64);
  sch.add(big);
  SchedulerOutput out;
  sch.schedule(out);
  finish_step(sch, out);
  Sequence* next = make(3 * 64, 50000);  // needs 3 blocks, 2 free
  Sequence* small = make(10, 90000);     // would fit, but must not overtake
  sch.add(next);
  sch.add(small);
  sch.schedule(out);
  ASSERT_EQ(out.chunks.size(), 1u);
  EXPECT_EQ(out.chunks[0].seq, big);
  EXPECT_EQ(sch.num_waiting(), 2u);
}

}  // namespace
}  // namespace dsinfer::engine
