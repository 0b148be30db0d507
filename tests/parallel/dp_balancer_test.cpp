#include "parallel/dp_balancer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "base/error.h"

namespace dsinfer::parallel {
namespace {

RankLoad rank_load(int64_t prefill_tokens, double attention_work, int64_t running, int64_t kv_used = 0,
                   int64_t kv_total = 0) {
  RankLoad l;
  l.prefill_tokens = prefill_tokens;
  l.attention_work = attention_work;
  l.running = running;
  l.kv_blocks_used = kv_used;
  l.kv_blocks_total = kv_total;
  return l;
}

DpRequestInfo request(int64_t prompt_tokens, uint64_t prefix_key = 0) {
  DpRequestInfo r;
  r.prompt_tokens = prompt_tokens;
  r.prefix_key = prefix_key;
  return r;
}

void report_all(DpBalancer& b, const std::vector<RankLoad>& loads) {
  for (int r = 0; r < int(loads.size()); ++r) b.report(r, loads[size_t(r)]);
}

TEST(DpBalancer, AssignAddsTheRequestToTheChosenRank) {
  DpBalancer b(2, DpBalancePolicy::kBoth);
  b.report(0, rank_load(10, 100, 1, 5, 1000));
  const int r = b.assign(request(100));
  ASSERT_EQ(r, 1);  // rank 1 is idle
  const RankLoad& l = b.load(1);
  EXPECT_EQ(l.prefill_tokens, 100);
  EXPECT_DOUBLE_EQ(l.attention_work, 100.0 * 100.0);
  EXPECT_EQ(l.running, 1);
  EXPECT_EQ(l.kv_blocks_used, 2) << "ceil(100 / 64) blocks";
  EXPECT_EQ(b.load(0).prefill_tokens, 10) << "the other rank is untouched";
  // Block rounding at the edges: 64 tokens fill one block exactly, 65 need two, 0 need none.
  DpBalancer c(1);
  c.assign(request(64));
  EXPECT_EQ(c.load(0).kv_blocks_used, 1);
  c.assign(request(65));
  EXPECT_EQ(c.load(0).kv_blocks_used, 3);
  c.assign(request(0));
  EXPECT_EQ(c.load(0).kv_blocks_used, 3);
  EXPECT_EQ(c.load(0).running, 3);
}

TEST(DpBalancer, ScoresFollowTheDocumentedFormulas) {
  // Two ranks, a request of 128 tokens (2 KV blocks); every number below is worked by hand.
  const std::vector<RankLoad> snapshot = {rank_load(300, 50000, 3, 40, 100), rank_load(100, 10000, 1, 10, 0)};
  const DpRequestInfo req = request(128);
  const double mean_tokens = (300 + 100 + 128) / 2.0;
  const double mean_work = (50000 + 10000 + 128.0 * 128) / 2.0;
  const double mean_running = (3 + 1 + 1) / 2.0;
  const double prefill0 = (300 + 128) / mean_tokens + (50000 + 128.0 * 128) / mean_work;
  const double prefill1 = (100 + 128) / mean_tokens + (10000 + 128.0 * 128) / mean_work;
  const double decode0 = (40 + 2) / 100.0 + (3 + 1) / mean_running;
  const double decode1 = 0.0 /* total unknown */ + (1 + 1) / mean_running;

  DpBalancer prefill(2, DpBalancePolicy::kPrefill), decode(2, DpBalancePolicy::kDecode), both(2);
  for (DpBalancer* b : {&prefill, &decode, &both}) report_all(*b, snapshot);
  EXPECT_DOUBLE_EQ(prefill.score(0, req), prefill0);
  EXPECT_DOUBLE_EQ(prefill.score(1, req), prefill1);
  EXPECT_DOUBLE_EQ(decode.score(0, req), decode0);
  EXPECT_DOUBLE_EQ(decode.score(1, req), decode1);
  EXPECT_DOUBLE_EQ(both.score(0, req), prefill0 + decode0);
  EXPECT_DOUBLE_EQ(both.score(1, req), prefill1 + decode1);

  // Below one request per rank on average, the running term divides by 1, not by the mean.
  DpBalancer idle(4, DpBalancePolicy::kDecode);
  EXPECT_DOUBLE_EQ(idle.score(0, request(10)), 1.0);
  // An all-zero group with an empty prompt: zero means give zero prefill terms, not NaN.
  DpBalancer empty(3, DpBalancePolicy::kPrefill);
  EXPECT_EQ(empty.score(2, request(0)), 0.0);
  EXPECT_EQ(empty.assign(request(0)), 0);
}

TEST(DpBalancer, LongPrefillQueueIsAvoided) {
  // Rank 0 has four long prompts queued (and holds their requests); ranks 1-3 are idle.
  const std::vector<RankLoad> snapshot = {rank_load(4 * 8000, 4 * 8000.0 * 8000, 4), RankLoad{}, RankLoad{},
                                          RankLoad{}};
  for (DpBalancePolicy policy : {DpBalancePolicy::kPrefill, DpBalancePolicy::kBoth}) {
    DpBalancer b(4, policy);
    report_all(b, snapshot);
    EXPECT_EQ(b.assign(request(500)), 1) << "the lowest idle rank, policy " << int(policy);
    EXPECT_EQ(b.assign(request(500)), 2);
    EXPECT_EQ(b.assign(request(500)), 3);
    EXPECT_EQ(b.assign(request(500)), 1) << "the long queue is still avoided";
  }
}

TEST(DpBalancer, QuadraticAttentionWorkIsAvoidedUnderEqualTokens) {
  // The same 8192 queued tokens on both ranks, but rank 0 holds them as one long prompt
  // (8192^2 attention work) and rank 1 as 64 prompts of 128 (64 * 128^2, 64 times less).
  DpBalancer b(2, DpBalancePolicy::kPrefill);
  b.report(0, rank_load(8192, 8192.0 * 8192, 1));
  b.report(1, rank_load(8192, 64 * 128.0 * 128, 64));
  EXPECT_GT(b.score(0, request(1000)), b.score(1, request(1000)));
  EXPECT_EQ(b.assign(request(1000)), 1) << "a token count alone would tie and pick rank 0";
}

TEST(DpBalancer, HighKvUsageIsAvoided) {
  // Equal running requests; rank 0's cache is 90% full, rank 1's 10%.
  DpBalancer b(2, DpBalancePolicy::kDecode);
  b.report(0, rank_load(0, 0, 8, 900, 1000));
  b.report(1, rank_load(0, 0, 8, 100, 1000));
  EXPECT_EQ(b.assign(request(256)), 1);

  // The decode policy ignores prefill queues: rank 1's long queue does not outweigh rank 0's cache.
  DpBalancer d(2, DpBalancePolicy::kDecode);
  d.report(0, rank_load(0, 0, 8, 900, 1000));
  d.report(1, rank_load(100000, 1e10, 8, 100, 1000));
  EXPECT_EQ(d.assign(request(256)), 1);
}

TEST(DpBalancer, FewerRunningRequestsWinUnderEqualKv) {
  DpBalancer b(3, DpBalancePolicy::kDecode);
  b.report(0, rank_load(0, 0, 10, 500, 1000));
  b.report(1, rank_load(0, 0, 7, 500, 1000));
  b.report(2, rank_load(0, 0, 3, 500, 1000));
  EXPECT_EQ(b.assign(request(64)), 2);
}

TEST(DpBalancer, BurstOfEqualRequestsSpreadsEvenly) {
  for (DpBalancePolicy policy : {DpBalancePolicy::kPrefill, DpBalancePolicy::kDecode, DpBalancePolicy::kBoth}) {
    DpBalancer b(4, policy);
    std::vector<int> count(4, 0);
    for (int i = 0; i < 100; ++i) ++count[size_t(b.assign(request(700)))];
    EXPECT_EQ(count, (std::vector<int>{25, 25, 25, 25})) << "policy " << int(policy);
    for (int r = 0; r < 4; ++r) {
      EXPECT_EQ(b.load(r).running, 25);
      EXPECT_EQ(b.load(r).prefill_tokens, 25 * 700);
    }
  }
}

TEST(DpBalancer, BurstOfMixedLengthsStaysBalanced) {
  // 400 prompts of 16..16384 tokens (log-uniform, fixed seed) onto 8 idle ranks, between reports.
  // Bound: when rank r got its last request of length l, it had the lowest score, so it was at
  // most the mean score over ranks; with the means taken after adding l, that gives
  //   tokens_r / mean_tokens + work_r / mean_work < 2   (each term averages to less than 1),
  // so tokens_r < 2 * mean_tokens, and finally max tokens < 2 * mean + longest. The same argument
  // bounds the attention work by 2 * mean + longest^2. (The 1 + longest/mean of greedy balancing
  // on tokens alone does not follow, since the score trades tokens against work.)
  constexpr int kRanks = 8;
  DpBalancer b(kRanks, DpBalancePolicy::kPrefill);
  std::mt19937_64 rng(7);
  int64_t longest = 0, total = 0;
  double total_work = 0;
  for (int i = 0; i < 400; ++i) {
    const int64_t len = int64_t(16.0 * std::pow(1024.0, double(rng() % 1000) / 1000.0));
    longest = std::max(longest, len);
    total += len;
    total_work += double(len) * double(len);
    b.assign(request(len));
  }
  const double mean = double(total) / kRanks, mean_work = total_work / kRanks;
  int64_t max_tokens = 0;
  double max_work = 0;
  for (int r = 0; r < kRanks; ++r) {
    max_tokens = std::max(max_tokens, b.load(r).prefill_tokens);
    max_work = std::max(max_work, b.load(r).attention_work);
  }
  EXPECT_LT(double(max_tokens) / mean, 2.0 + double(longest) / mean);
  EXPECT_LT(max_work / mean_work, 2.0 + double(longest) * double(longest) / mean_work);
  // The provable bounds let round-robin pass. This recorded burst also meets the 1 + longest/mean
  // of greedy balancing on one quantity, on both (tokens 1.107 against 1.138, work 1.152 against
  // 1.286), which round-robin on the same burst does not (1.446 and 1.570).
  EXPECT_LE(double(max_tokens) / mean, 1.0 + double(longest) / mean);
  EXPECT_LE(max_work / mean_work, 1.0 + double(longest) * double(longest) / mean_work);
}

TEST(DpBalancer, PrefixAffinityBreaksTies) {
  DpBalancer b(4, DpBalancePolicy::kBoth);
  constexpr uint64_t kPrefix = 0x5eed;
  b.report(0, rank_load(1000, 1e6, 1));
  ASSERT_EQ(b.assign(request(200, kPrefix)), 1);  // rank 0 busy: the prefix lands on rank 1
  EXPECT_EQ(b.remembered_rank(kPrefix), 1);

  // A fresh report with every rank idle: all four tie; the prefix's rank wins over rank 0.
  report_all(b, std::vector<RankLoad>(4));
  EXPECT_EQ(b.assign(request(200, kPrefix)), 1);
  // A request without a prefix (or an unknown one) on the same tie goes to the lowest rank.
  report_all(b, std::vector<RankLoad>(4));
  EXPECT_EQ(b.assign(request(200)), 0);
  report_all(b, std::vector<RankLoad>(4));
  EXPECT_EQ(b.assign(request(200, 0xabc)), 0);
}

TEST(DpBalancer, PrefixAffinityNeverOverridesABetterRank) {
  DpBalancer b(4, DpBalancePolicy::kBoth);
  constexpr uint64_t kPrefix = 0x5eed;
  b.report(0, rank_load(1000, 1e6, 1));
  ASSERT_EQ(b.assign(request(200, kPrefix)), 1);

  // Rank 1 one token busier than the others: strictly worse, so affinity does not apply.
  report_all(b, {RankLoad{}, rank_load(1, 1, 0), RankLoad{}, RankLoad{}});
  EXPECT_GT(b.score(1, request(200, kPrefix)), b.score(0, request(200, kPrefix)));
  EXPECT_EQ(b.assign(request(200, kPrefix)), 0);
  EXPECT_EQ(b.remembered_rank(kPrefix), 0) << "the prefix now lives where it was last sent";

  // Ranks 2 and 3 tie for best, the remembered rank 0 is worse: the lowest tied rank wins.
  report_all(b, {rank_load(50, 2500, 1), rank_load(50, 2500, 1), RankLoad{}, RankLoad{}});
  EXPECT_EQ(b.assign(request(200, kPrefix)), 2);
}

TEST(DpBalancer, PrefixMemoryForgetsLeastRecentlyAssignedKeys) {
  constexpr int kMemory = DpBalancer::kPrefixMemory;
  DpBalancer b(2, DpBalancePolicy::kDecode);
  constexpr uint64_t kPrefix = 0xfeedface;
  b.report(0, rank_load(0, 0, 5));
  ASSERT_EQ(b.assign(request(10, kPrefix)), 1);
  for (uint64_t k = 1; k <= 2000; ++k) b.assign(request(10, k));
  // Assigned again, the key becomes the most recent one and outlives the 2000 keys before it.
  b.report(0, rank_load(0, 0, 5000));
  ASSERT_EQ(b.assign(request(10, kPrefix)), 1);
  for (uint64_t k = 100000; k < 100000 + uint64_t(kMemory) - 1; ++k) b.assign(request(10, k));
  EXPECT_EQ(b.remembered_rank(kPrefix), 1) << "kPrefixMemory - 1 keys later it is still remembered";
  for (uint64_t k = 1; k <= 2000; ++k) ASSERT_EQ(b.remembered_rank(k), -1) << "older key " << k << " is forgotten";
  b.assign(request(10, 7777777));
  EXPECT_EQ(b.remembered_rank(kPrefix), -1) << "one more key and it is forgotten";
  // Every newer key is still found: forgetting keys keeps the index's probe runs intact.
  for (uint64_t k = 100000; k < 100000 + uint64_t(kMemory) - 1; ++k) ASSERT_NE(b.remembered_rank(k), -1) << k;
  EXPECT_NE(b.remembered_rank(7777777), -1);
  EXPECT_EQ(b.remembered_rank(0), -1) << "0 means no prefix";
}

TEST(DpBalancer, PrefixMemoryMatchesAReferenceModel) {
  // 30000 assignments with keys drawn from a pool of 6000 (repeats and evictions interleave), against
  // the rule written out plainly: a key maps to the rank of its last assignment while fewer than
  // kPrefixMemory key-carrying assignments have followed it.
  DpBalancer b(5, DpBalancePolicy::kBoth);
  std::mt19937_64 rng(11);
  std::vector<uint64_t> pool(6000);
  for (uint64_t& k : pool) k = rng() | 1;  // never 0
  std::vector<int64_t> last_assigned(pool.size(), -1);
  std::vector<int> last_rank(pool.size(), -1);
  int64_t assigned = 0;
  for (int i = 0; i < 30000; ++i) {
    const size_t which = size_t(rng() % pool.size());
    const int rank = b.assign(request(int64_t(rng() % 3000), pool[which]));
    last_assigned[which] = assigned++;
    last_rank[which] = rank;
    if (i % 3000 == 2999) {
      for (size_t k = 0; k < pool.size(); ++k) {
        const bool remembered = last_assigned[k] >= 0 && assigned - 1 - last_assigned[k] < DpBalancer::kPrefixMemory;
        ASSERT_EQ(b.remembered_rank(pool[k]), remembered ? last_rank[k] : -1) << "key " << k << " after " << i;
      }
    }
  }
}

TEST(DpBalancer, ReportReplacesTheView) {
  DpBalancer b(2, DpBalancePolicy::kBoth);
  for (int i = 0; i < 10; ++i) b.assign(request(1000));
  ASSERT_EQ(b.load(0).running, 5);
  // The ranks report: rank 0 finished everything, rank 1 still holds its work and more.
  const RankLoad busy = rank_load(6000, 6 * 1000.0 * 1000, 6, 100, 1000);
  b.report(0, RankLoad{});
  b.report(1, busy);
  EXPECT_EQ(b.load(0).running, 0);
  EXPECT_EQ(b.load(0).prefill_tokens, 0);
  EXPECT_EQ(b.load(1).prefill_tokens, busy.prefill_tokens);
  EXPECT_EQ(b.load(1).kv_blocks_total, busy.kv_blocks_total);
  // The next requests follow the reported numbers, not the balancer's own earlier accounting.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.assign(request(1000)), 0) << "request " << i;
}

TEST(DpBalancer, SameInputsGiveSameChoices) {
  DpBalancer a(6, DpBalancePolicy::kBoth), b(6, DpBalancePolicy::kBoth);
  std::mt19937_64 rng(2024);
  std::vector<int> choices_a, choices_b;
  std::vector<int> per_rank(6, 0);
  for (int step = 0; step < 50; ++step) {
    const int rank = int(rng() % 6);
    const RankLoad load = rank_load(int64_t(rng() % 20000), double(rng() % 100000000), int64_t(rng() % 32),
                                    int64_t(rng() % 500), 1000);
    a.report(rank, load);
    b.report(rank, load);
    for (int i = 0; i < 8; ++i) {
      const DpRequestInfo req = request(int64_t(rng() % 4096), rng() % 16);  // few prefixes: ties use them
      choices_a.push_back(a.assign(req));
      choices_b.push_back(b.assign(req));
      ++per_rank[size_t(choices_a.back())];
    }
  }
  EXPECT_EQ(choices_a, choices_b);
  EXPECT_GT(*std::min_element(per_rank.begin(), per_rank.end()), 0) << "the sequence exercises every rank";
}

TEST(DpBalancer, RejectsInvalidInput) {
  EXPECT_THROW(DpBalancer(0), Error);
  DpBalancer b(2);
  EXPECT_THROW(b.report(2, RankLoad{}), Error);
  EXPECT_THROW(b.report(-1, RankLoad{}), Error);
  EXPECT_THROW(b.report(0, rank_load(-1, 0, 0)), Error);
  EXPECT_THROW(b.report(0, rank_load(0, -1.0, 0)), Error);
  EXPECT_THROW(b.assign(request(-5)), Error);
  EXPECT_THROW(b.load(3), Error);
  EXPECT_EQ(b.load(0).running, 0) << "a rejected call changes nothing";
}

}  // namespace
}  // namespace dsinfer::parallel
