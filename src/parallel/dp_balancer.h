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

namespace dsinfer::parallel {

// Tokens per KV block, as the prefix_key (hash of the first full block) and kv accounting assume.
constexpr int64_t kDpBlockTokens = 64;

// What the front door knows of one rank's load: its last reported status plus what it has
// assigned since (so a burst of requests spreads before the next report arrives).
struct RankLoad {
  int64_t prefill_tokens = 0;   // prompt tokens waiting or mid-prefill on the rank
  double attention_work = 0;    // sum over those prompts of (tokens still to prefill)^2
  int64_t running = 0;          // sequences running or waiting (requests it holds)
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_total = 0;  // 0: unknown (treated as unbounded)
};

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
  // The group-wide means after adding a request, shared by every rank's score.
  struct GroupMeans {
    double tokens = 0;
    double work = 0;
    double running = 0;
  };
  GroupMeans means_after(const DpRequestInfo& request) const;
  double score_with(const RankLoad& rank, const DpRequestInfo& request, const GroupMeans& means) const;
  void check_rank(int rank, const char* what) const;

  // Prefix memory: a ring of the last kPrefixMemory (key, rank) entries, in assignment order, and
  // an open-addressing index (linear probing, at most half full) from key to ring slot. Both are
  // sized once in the constructor, so assign() never allocates.
  struct PrefixEntry {
    uint64_t key = 0;  // 0: empty (0 is "no prefix" and never stored)
    int rank = -1;
  };
  int find_slot(uint64_t key) const;  // index position holding key, or -1
  void remember(uint64_t key, int rank);
  void forget(int hole);  // removes the entry at index position `hole`

  DpBalancePolicy policy_;
  std::vector<RankLoad> loads_;
  std::vector<PrefixEntry> ring_;
  int ring_next_ = 0;            // ring slot the next key goes to (the oldest entry)
  std::vector<int32_t> index_;   // ring slot per position, -1 when free
};

}  // namespace dsinfer::parallel
