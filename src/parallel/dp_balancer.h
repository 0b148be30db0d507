// DpBalancer: the front door's choice of rank under DeepSeek's "DP attention", where every rank of
// an expert-parallel group runs its own scheduler and KV cache and each new request must be given
// to one of them. DeepSeek describes two balancers, and a deployment that prefills and decodes a
// request on the same rank needs both:
//  - prefill: balance core-attention work, whose cost grows with the square of the tokens still to
//    prefill, and the number of input tokens (the linear layers' work) across ranks;
//  - decode: balance KV-cache usage (a full cache stalls or preempts a rank) and the number of
//    requests each rank runs (a rank's decode step is as slow as its batch is large).
// The front door knows each rank's last report (report(), once per engine step) plus what it has
// assigned since (assign() adds the request to the chosen rank), so a burst arriving between two
// reports spreads out instead of landing on the rank that looked idlest at the last report.
//
// Rules, for a request of L prompt tokens (means are over all ranks *after* adding the request, so
// each term compares a rank against the load the group will carry; a zero mean gives the term 0):
//  - kPrefill: score(r) = (prefill_tokens_r + L) / mean_tokens + (attention_work_r + L^2) / mean_work
//    (the two ratios put tokens and quadratic attention work on one scale);
//  - kDecode:  score(r) = (kv_blocks_used_r + ceil(L/64)) / kv_blocks_total_r  (0 when the total is
//    unknown) + (running_r + 1) / max(1, mean_running) (the max keeps one request on an idle group
//    from outweighing a full cache);
//  - kBoth: the sum of the two scores.
// The lowest score wins. Scores within 1e-9 (relative) of the best are tied; among tied ranks the
// one last given the request's prefix_key wins (its KV blocks for that prefix may still be cached
// there), else the lowest rank index. Affinity only breaks ties: it never picks a worse rank.
// Pure and deterministic: same reports and requests, same choices. assign() is O(num_ranks) and
// allocates nothing: the prefix memory is a table sized once for kPrefixMemory keys.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/latent_cache.h"
#include "parallel/prefix_memory.h"

namespace dsinfer::parallel {

// Tokens per KV block, as the prefix_key (hash of the first full block) and kv accounting assume.
constexpr int64_t kDpBlockTokens = kernels::kKvBlockTokens;

// What the front door knows of one rank's load: its last reported status plus what it has
// assigned since (so a burst of requests spreads before the next report arrives).
struct RankLoad {
  int64_t prefill_tokens = 0;   // prompt tokens waiting or mid-prefill on the rank
  double attention_work = 0;    // sum over those prompts of (tokens still to prefill)^2
  int64_t running = 0;          // sequences running or waiting (requests it holds)
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_total = 0;  // 0: unknown (treated as unbounded)
};

// The rules' arithmetic, one function per formula, shared with the prefill/decode router's
// balancers (pd_balancer.h), which score instances by the same formulas.
//
// The group-wide means of the rules: start from the request (L tokens, L^2 attention work, one
// request), add() every rank the group counts, then means() divides by the ranks added (zero
// means when none was).
struct DpGroupMeans {
  double tokens = 0;
  double work = 0;
  double running = 0;
};
class DpGroupTotals {
 public:
  explicit DpGroupTotals(int64_t prompt_tokens);
  void add(const RankLoad& rank);
  DpGroupMeans means() const;

 private:
  int64_t tokens_ = 0;
  double work_ = 0;
  int64_t running_ = 1;
  int ranks_ = 0;
};
// kPrefill's score of a rank that would take `new_tokens` more tokens to prefill (DpBalancer: the
// prompt's L; the prefill router: L less the tokens the instance already holds):
// (prefill_tokens + new) / mean_tokens + (attention_work + new^2) / mean_work.
double dp_prefill_score(const RankLoad& rank, int64_t new_tokens, const DpGroupMeans& means);
// kDecode's score of a rank that would take `new_blocks` more KV blocks and one more request:
// (kv_blocks_used + new_blocks) / kv_blocks_total (0 when the total is 0) + (running + 1) /
// max(1, mean_running).
double dp_decode_score(const RankLoad& rank, int64_t new_blocks, const DpGroupMeans& means);
// The rules' tie: `score` within 1e-9 (relative) of `best`.
bool dp_scores_tied(double score, double best);
// ceil(tokens / block_tokens): the KV blocks a prompt of `tokens` takes.
int64_t dp_kv_blocks(int64_t tokens, int64_t block_tokens = kDpBlockTokens);

enum class DpBalancePolicy { kPrefill, kDecode, kBoth };

struct DpRequestInfo {
  int64_t prompt_tokens = 0;
  uint64_t prefix_key = 0;      // hash of the prompt's first full KV block (64 tokens); 0: none
};

class DpBalancer {
 public:
  // Prefix memory: a key is forgotten once this many assignments carrying a prefix key have
  // followed its last assignment (so at most this many keys are remembered).
  static constexpr int kPrefixMemory = 4096;

  // Throws Error unless num_ranks > 0. Every rank starts idle (a zero RankLoad).
  explicit DpBalancer(int num_ranks, DpBalancePolicy policy = DpBalancePolicy::kBoth);

  // Replace rank r's load with a fresh report (called once per engine step by the front door).
  // Throws Error on a rank out of range or a negative count.
  void report(int rank, const RankLoad& load);

  // Chooses a rank for the request and adds the request to that rank's load (prefill_tokens +=
  // prompt, attention_work += prompt^2, running += 1, kv_blocks_used += ceil(prompt/64)), and
  // remembers prefix_key -> rank (a non-zero key only; see kPrefixMemory for how long). Throws
  // Error on a negative prompt length.
  int assign(const DpRequestInfo& request);

  // The score assign() would give rank r for this request now (lower is better), for inspection.
  double score(int rank, const DpRequestInfo& request) const;
  // The rank prefix_key was last assigned to, or -1 when it is 0 or not remembered.
  int remembered_rank(uint64_t prefix_key) const;

  const RankLoad& load(int rank) const;
  int num_ranks() const { return int(loads_.size()); }
  DpBalancePolicy policy() const { return policy_; }

 private:
  DpGroupMeans means_after(const DpRequestInfo& request) const;
  double score_with(const RankLoad& rank, const DpRequestInfo& request, const DpGroupMeans& means) const;
  void check_rank(int rank, const char* what) const;

  DpBalancePolicy policy_;
  std::vector<RankLoad> loads_;
  PrefixMemory prefix_{kPrefixMemory};  // prefix_key -> the rank it was last assigned to
};

}  // namespace dsinfer::parallel
