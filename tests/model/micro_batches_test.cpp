#include "model/micro_batches.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace dsinfer::model {
namespace {

// A step of decode tokens and prompt chunks with the given (new tokens, cached tokens).
Batch step_of(const std::vector<std::pair<int64_t, int64_t>>& chunks, std::vector<int32_t>& table) {
  Batch b;
  int32_t next = 100;
  for (auto [n, cached] : chunks) {
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < n; ++i) ids.push_back(next++);
    b.add(ids.data(), n, cached, table.data(), n == 1 ? Batch::Logits::kLast : Batch::Logits::kAll, n == 1);
  }
  return b;
}

TEST(MicroBatches, AttentionWorkCountsEveryAttendedToken) {
  EXPECT_EQ(attention_work({0, 1, 9, nullptr, true}), 10);  // a decode token over 9 cached + itself
  EXPECT_EQ(attention_work({0, 3, 0, nullptr, false}), 6);  // 1 + 2 + 3
  EXPECT_EQ(attention_work({0, 2, 5, nullptr, false}), 13); // 6 + 7
}

TEST(MicroBatches, SplitKeepsEveryTokenAndTheLogitsOrder) {
  std::vector<int32_t> table(64, 0);
  const Batch b = step_of({{1, 500}, {7, 0}, {1, 20}, {30, 10}, {1, 3}, {1, 900}}, table);
  MicroBatchSplit s;
  split_micro_batches(b, s);
  const Batch& p = s.permuted;
  ASSERT_EQ(p.tokens.size(), b.tokens.size());
  EXPECT_EQ(s.num_tokens[0] + s.num_tokens[1], int64_t(b.tokens.size()));
  EXPECT_EQ(s.first_token[1], s.num_tokens[0]);
  // Each micro-batch is its slice of the permuted step, sequence for sequence.
  size_t seq = 0;
  for (int m = 0; m < 2; ++m) {
    EXPECT_EQ(int64_t(s.part[m].tokens.size()), s.num_tokens[m]);
    for (const SequenceChunk& c : s.part[m].seqs) {
      const SequenceChunk& whole = p.seqs[seq++];
      EXPECT_EQ(whole.first_token, s.first_token[m] + c.first_token);
      EXPECT_EQ(whole.num_tokens, c.num_tokens);
      EXPECT_EQ(whole.cached_tokens, c.cached_tokens);
      EXPECT_EQ(whole.decode, c.decode);
    }
  }
  EXPECT_EQ(seq, p.seqs.size());
  // The logits rows name the same tokens in the same order.
  ASSERT_EQ(p.logits_rows.size(), b.logits_rows.size());
  for (size_t i = 0; i < b.logits_rows.size(); ++i)
    EXPECT_EQ(p.tokens[size_t(p.logits_rows[i])], b.tokens[size_t(b.logits_rows[i])]) << "logits row " << i;
  // Every sequence's tokens kept together with its cached length.
  std::map<int64_t, int64_t> cached_of_first_token;
  for (const SequenceChunk& c : b.seqs) cached_of_first_token[b.tokens[size_t(c.first_token)]] = c.cached_tokens;
  for (const SequenceChunk& c : p.seqs) EXPECT_EQ(cached_of_first_token[p.tokens[size_t(c.first_token)]], c.cached_tokens);
}

TEST(MicroBatches, SplitBalancesAttentionWork) {
  std::vector<int32_t> table(64, 0);
  // Decode tokens over contexts 900, 500, 400, 300, 200, 100: the greedy deal gives 1,200 | 1,200.
  const Batch b = step_of({{1, 100}, {1, 900}, {1, 300}, {1, 500}, {1, 200}, {1, 400}}, table);
  MicroBatchSplit s;
  split_micro_batches(b, s);
  EXPECT_EQ(s.work[0] + s.work[1], 2406);
  EXPECT_LE(std::abs(s.work[0] - s.work[1]), 100) << s.work[0] << " vs " << s.work[1];
  // Each micro-batch keeps the step's order of its sequences.
  for (int m = 0; m < 2; ++m)
    for (size_t i = 1; i < s.part[m].seqs.size(); ++i)
      EXPECT_LT(s.part[m].tokens[size_t(s.part[m].seqs[i - 1].first_token)],
                s.part[m].tokens[size_t(s.part[m].seqs[i].first_token)]);
}

TEST(MicroBatches, OneSequenceOrNoneLeavesAMicroBatchEmpty) {
  std::vector<int32_t> table(64, 0);
  MicroBatchSplit s;
  split_micro_batches(step_of({{12, 0}}, table), s);
  EXPECT_EQ(s.num_tokens[0], 12);
  EXPECT_EQ(s.num_tokens[1], 0);
  EXPECT_TRUE(s.part[1].seqs.empty());
  split_micro_batches(Batch{}, s);  // buffers reused, nothing left over
  EXPECT_TRUE(s.permuted.tokens.empty());
  EXPECT_EQ(s.num_tokens[0] + s.num_tokens[1], 0);
}

}  // namespace
}  // namespace dsinfer::model
