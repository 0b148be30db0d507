#include "parallel/dp_balancer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"

namespace dsinfer::parallel {

namespace {

// Scores are sums of a few ratios of order 1; two ranks whose scores differ by less than this
// (relative) differ only by rounding, and the choice between them is left to the tie-break.
constexpr double kTieRelative = 1e-9;

// The prefix index has twice the ring's positions, so linear probing stays short (at most half full).
constexpr int kIndexSize = 2 * DpBalancer::kPrefixMemory;
static_assert((kIndexSize & (kIndexSize - 1)) == 0, "the prefix index size must be a power of two");

int64_t kv_blocks_for(int64_t prompt_tokens) { return (prompt_tokens + kDpBlockTokens - 1) / kDpBlockTokens; }

double squared(int64_t tokens) { return double(tokens) * double(tokens); }

// A rank's load relative to the group's mean; an all-zero group (mean 0) means nothing to balance.
double ratio(double value, double mean) { return mean > 0 ? value / mean : 0.0; }

bool tied(double score, double best) {
  return score - best <= kTieRelative * std::max(std::abs(score), std::abs(best));
}

// prefix_key is a hash already, but a caller's keys may be structured (small counters in tests,
// truncated hashes); the splitmix64 finaliser spreads any key over the index.
int home_position(uint64_t key) {
  key ^= key >> 30;
  key *= 0xbf58476d1ce4e5b9ULL;
  key ^= key >> 27;
  key *= 0x94d049bb133111ebULL;
  key ^= key >> 31;
  return int(key & uint64_t(kIndexSize - 1));
}

int next_position(int pos) { return (pos + 1) & (kIndexSize - 1); }

}  // namespace

DpBalancer::DpBalancer(int num_ranks, DpBalancePolicy policy) : policy_(policy) {
  check(num_ranks > 0, "dp balancer: num_ranks must be positive, got ", num_ranks);
  loads_.assign(size_t(num_ranks), RankLoad{});
  ring_.assign(size_t(kPrefixMemory), PrefixEntry{});
  index_.assign(size_t(kIndexSize), -1);
}

void DpBalancer::check_rank(int rank, const char* what) const {
  check(rank >= 0 && rank < num_ranks(), "dp balancer: ", what, " of rank ", rank, ", but ranks are 0..",
        num_ranks() - 1);
}

void DpBalancer::report(int rank, const RankLoad& load) {
  check_rank(rank, "report");
  check(load.prefill_tokens >= 0 && load.running >= 0 && load.kv_blocks_used >= 0 && load.kv_blocks_total >= 0,
        "dp balancer: rank ", rank, " reported a negative count");
  check(std::isfinite(load.attention_work) && load.attention_work >= 0, "dp balancer: rank ", rank,
        " reported attention work ", load.attention_work, "; it must be finite and >= 0");
  loads_[size_t(rank)] = load;
}

const RankLoad& DpBalancer::load(int rank) const {
  check_rank(rank, "load");
  return loads_[size_t(rank)];
}

DpBalancer::GroupMeans DpBalancer::means_after(const DpRequestInfo& request) const {
  int64_t tokens = request.prompt_tokens;
  double work = squared(request.prompt_tokens);
  int64_t running = 1;
  for (const RankLoad& r : loads_) {
    tokens += r.prefill_tokens;
    work += r.attention_work;
    running += r.running;
  }
  const double n = double(loads_.size());
  return GroupMeans{double(tokens) / n, work / n, double(running) / n};
}

double DpBalancer::score_with(const RankLoad& rank, const DpRequestInfo& request, const GroupMeans& means) const {
  const int64_t prompt = request.prompt_tokens;
  const double prefill = ratio(double(rank.prefill_tokens + prompt), means.tokens) +
                         ratio(rank.attention_work + squared(prompt), means.work);
  const double kv_fraction =
      rank.kv_blocks_total > 0 ? double(rank.kv_blocks_used + kv_blocks_for(prompt)) / double(rank.kv_blocks_total)
                               : 0.0;
  const double decode = kv_fraction + double(rank.running + 1) / std::max(1.0, means.running);
  switch (policy_) {
    case DpBalancePolicy::kPrefill:
      return prefill;
    case DpBalancePolicy::kDecode:
      return decode;
    case DpBalancePolicy::kBoth:
      break;
  }
  return prefill + decode;
}

double DpBalancer::score(int rank, const DpRequestInfo& request) const {
  check_rank(rank, "score");
  check(request.prompt_tokens >= 0, "dp balancer: prompt_tokens must be >= 0, got ", request.prompt_tokens);
  return score_with(loads_[size_t(rank)], request, means_after(request));
}

int DpBalancer::assign(const DpRequestInfo& request) {
  check(request.prompt_tokens >= 0, "dp balancer: prompt_tokens must be >= 0, got ", request.prompt_tokens);
  const GroupMeans means = means_after(request);
  double best = std::numeric_limits<double>::infinity();
  for (const RankLoad& r : loads_) best = std::min(best, score_with(r, request, means));

  // The same arithmetic on the same loads gives the same scores, so recomputing them here (rather
  // than keeping a per-call array) classifies each rank exactly as the first pass saw it.
  int chosen = -1;
  const int affinity = remembered_rank(request.prefix_key);
  if (affinity >= 0 && tied(score_with(loads_[size_t(affinity)], request, means), best)) {
    chosen = affinity;
  } else {
    for (int r = 0; r < num_ranks() && chosen < 0; ++r) {
      if (tied(score_with(loads_[size_t(r)], request, means), best)) chosen = r;
    }
  }

  RankLoad& load = loads_[size_t(chosen)];
  load.prefill_tokens += request.prompt_tokens;
  load.attention_work += squared(request.prompt_tokens);
  load.running += 1;
  load.kv_blocks_used += kv_blocks_for(request.prompt_tokens);
  if (request.prefix_key != 0) remember(request.prefix_key, chosen);
  return chosen;
}

// ---------------------------------------------------------------------------------------------
// Prefix memory.

int DpBalancer::find_slot(uint64_t key) const {
  for (int pos = home_position(key); index_[size_t(pos)] >= 0; pos = next_position(pos)) {
    if (ring_[size_t(index_[size_t(pos)])].key == key) return pos;
  }
  return -1;
}

int DpBalancer::remembered_rank(uint64_t prefix_key) const {
  if (prefix_key == 0) return -1;
  const int pos = find_slot(prefix_key);
  return pos < 0 ? -1 : ring_[size_t(index_[size_t(pos)])].rank;
}

void DpBalancer::remember(uint64_t key, int rank) {
  // A key assigned again moves to the newest ring slot (least recently assigned is forgotten first).
  if (const int pos = find_slot(key); pos >= 0) forget(pos);
  PrefixEntry& slot = ring_[size_t(ring_next_)];
  if (slot.key != 0) forget(find_slot(slot.key));  // the oldest key leaves
  slot = PrefixEntry{key, rank};
  int pos = home_position(key);
  while (index_[size_t(pos)] >= 0) pos = next_position(pos);
  index_[size_t(pos)] = ring_next_;
  ring_next_ = (ring_next_ + 1) % kPrefixMemory;
}

// Removes the entry at index position `hole` and its ring slot. Linear probing has no tombstones
// here: each later entry of the probe run moves back into the hole unless its home position lies
// cyclically in (hole, pos], where moving it would put it before its home and make it unfindable.
void DpBalancer::forget(int hole) {
  ring_[size_t(index_[size_t(hole)])] = PrefixEntry{};
  for (int pos = next_position(hole); index_[size_t(pos)] >= 0; pos = next_position(pos)) {
    const int home = home_position(ring_[size_t(index_[size_t(pos)])].key);
    const bool stays = hole <= pos ? (hole < home && home <= pos) : (hole < home || home <= pos);
    if (stays) continue;
    index_[size_t(hole)] = index_[size_t(pos)];
    hole = pos;
  }
  index_[size_t(hole)] = -1;
}

}  // namespace dsinfer::parallel
