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

double squared(int64_t tokens) { return double(tokens) * double(tokens); }

// A rank's load relative to the group's mean; an all-zero group (mean 0) means nothing to balance.
double ratio(double value, double mean) { return mean > 0 ? value / mean : 0.0; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// The rules' arithmetic (shared with pd_balancer.cpp).

DpGroupTotals::DpGroupTotals(int64_t prompt_tokens) : tokens_(prompt_tokens), work_(squared(prompt_tokens)) {}

void DpGroupTotals::add(const RankLoad& rank) {
  tokens_ += rank.prefill_tokens;
  work_ += rank.attention_work;
  running_ += rank.running;
  ++ranks_;
}

DpGroupMeans DpGroupTotals::means() const {
  if (ranks_ == 0) return DpGroupMeans{};
  const double n = double(ranks_);
  return DpGroupMeans{double(tokens_) / n, work_ / n, double(running_) / n};
}

double dp_prefill_score(const RankLoad& rank, int64_t new_tokens, const DpGroupMeans& means) {
  return ratio(double(rank.prefill_tokens + new_tokens), means.tokens) +
         ratio(rank.attention_work + squared(new_tokens), means.work);
}

double dp_decode_score(const RankLoad& rank, int64_t new_blocks, const DpGroupMeans& means) {
  const double kv_fraction =
      rank.kv_blocks_total > 0 ? double(rank.kv_blocks_used + new_blocks) / double(rank.kv_blocks_total) : 0.0;
  return kv_fraction + double(rank.running + 1) / std::max(1.0, means.running);
}

bool dp_scores_tied(double score, double best) {
  return score - best <= kTieRelative * std::max(std::abs(score), std::abs(best));
}

int64_t dp_kv_blocks(int64_t tokens, int64_t block_tokens) { return (tokens + block_tokens - 1) / block_tokens; }

// ---------------------------------------------------------------------------------------------
// DpBalancer.

DpBalancer::DpBalancer(int num_ranks, DpBalancePolicy policy) : policy_(policy) {
  check(num_ranks > 0, "dp balancer: num_ranks must be positive, got ", num_ranks);
  loads_.assign(size_t(num_ranks), RankLoad{});
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

DpGroupMeans DpBalancer::means_after(const DpRequestInfo& request) const {
  DpGroupTotals totals(request.prompt_tokens);
  for (const RankLoad& r : loads_) totals.add(r);
  return totals.means();
}

double DpBalancer::score_with(const RankLoad& rank, const DpRequestInfo& request, const DpGroupMeans& means) const {
  const double prefill = dp_prefill_score(rank, request.prompt_tokens, means);
  const double decode = dp_decode_score(rank, dp_kv_blocks(request.prompt_tokens), means);
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
  const DpGroupMeans means = means_after(request);
  double best = std::numeric_limits<double>::infinity();
  for (const RankLoad& r : loads_) best = std::min(best, score_with(r, request, means));

  // The same arithmetic on the same loads gives the same scores, so recomputing them here (rather
  // than keeping a per-call array) classifies each rank exactly as the first pass saw it.
  int chosen = -1;
  const int affinity = remembered_rank(request.prefix_key);
  if (affinity >= 0 && dp_scores_tied(score_with(loads_[size_t(affinity)], request, means), best)) {
    chosen = affinity;
  } else {
    for (int r = 0; r < num_ranks() && chosen < 0; ++r) {
      if (dp_scores_tied(score_with(loads_[size_t(r)], request, means), best)) chosen = r;
    }
  }

  RankLoad& load = loads_[size_t(chosen)];
  load.prefill_tokens += request.prompt_tokens;
  load.attention_work += squared(request.prompt_tokens);
  load.running += 1;
  load.kv_blocks_used += dp_kv_blocks(request.prompt_tokens);
  prefix_.remember(request.prefix_key, chosen);  // a 0 key (no prefix) is not stored
  return chosen;
}

int DpBalancer::remembered_rank(uint64_t prefix_key) const { return prefix_.find(prefix_key); }

}  // namespace dsinfer::parallel
