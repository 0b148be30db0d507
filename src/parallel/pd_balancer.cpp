#include "parallel/pd_balancer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_fields.h"

namespace dsinfer::parallel {

namespace {

// The prefix keys up to the first 0 key (a 0 key ends the chain: it is never stored).
std::span<const uint64_t> chain_of(std::span<const uint64_t> prefix_keys) {
  const auto end = std::find(prefix_keys.begin(), prefix_keys.end(), uint64_t(0));
  return prefix_keys.first(size_t(end - prefix_keys.begin()));
}

double squared(int64_t tokens) { return double(tokens) * double(tokens); }

}  // namespace

InstanceLoad parse_instance_status(const nlohmann::json& status, const std::string& origin) {
  // Instances may add fields the router does not read (kv_layout, transfer_address, ...).
  FieldReader r(status, origin, "", FieldStyle{UnknownKeys::kIgnore, "field"});
  InstanceLoad load;
  load.role = r.one_of<InstanceRole>("role", {{"prefill", InstanceRole::kPrefill}, {"decode", InstanceRole::kDecode}});
  load.accepting = r.boolean("accepting");
  load.running = r.integer("running", IntRange::non_negative());
  load.waiting = r.integer("waiting", IntRange::non_negative());
  load.prefill_tokens = r.integer("prefill_tokens", IntRange::non_negative());
  load.attention_work = r.number("attention_work", NumberRange::non_negative());
  load.kv_blocks_used = r.integer("kv_blocks_used", IntRange::non_negative());
  load.kv_blocks_total = r.integer("kv_blocks_total", IntRange::non_negative());
  if (load.kv_blocks_total > 0 && load.kv_blocks_used > load.kv_blocks_total)
    r.fail("kv_blocks_used", "(", load.kv_blocks_used, ") exceeds kv_blocks_total (", load.kv_blocks_total, ")");
  load.block_size = r.integer("block_size", IntRange::positive());
  return load;
}

// ---------------------------------------------------------------------------------------------
// PdInstanceSet.

PdInstanceSet::PdInstanceSet(int num_instances, InstanceRole role) : role_(role) {
  check(num_instances > 0, name(), ": num_instances must be positive, got ", num_instances);
  InstanceLoad idle;
  idle.role = role;
  loads_.assign(size_t(num_instances), idle);
  up_.assign(size_t(num_instances), 1);
}

void PdInstanceSet::check_instance(int instance, const char* what) const {
  check(instance >= 0 && instance < num_instances(), name(), ": ", what, " of instance ", instance,
        ", but instances are 0..", num_instances() - 1);
}

void PdInstanceSet::check_exclude(std::span<const int> exclude) const {
  for (int i : exclude) check_instance(i, "exclude");
}

void PdInstanceSet::report(int instance, const InstanceLoad& load) {
  check_instance(instance, "report");
  check(load.prefill_tokens >= 0 && load.running >= 0 && load.waiting >= 0 && load.kv_blocks_used >= 0 &&
            load.kv_blocks_total >= 0,
        name(), ": instance ", instance, " reported a negative count");
  check(std::isfinite(load.attention_work) && load.attention_work >= 0, name(), ": instance ", instance,
        " reported attention work ", load.attention_work, "; it must be finite and >= 0");
  check(load.block_size > 0, name(), ": instance ", instance, " reported block_size ", load.block_size,
        "; it must be positive");
  check(load.role == role_, name(), ": instance ", instance, " reports the role ",
        load.role == InstanceRole::kPrefill ? "prefill" : "decode", "; it is listed as a ",
        role_ == InstanceRole::kPrefill ? "prefill" : "decode", " instance");
  std::lock_guard lock(mu_);
  loads_[size_t(instance)] = load;
}

bool PdInstanceSet::is_up(int instance) const {
  check_instance(instance, "is_up");
  std::lock_guard lock(mu_);
  return up_[size_t(instance)] != 0;
}

InstanceLoad PdInstanceSet::load(int instance) const {
  check_instance(instance, "load");
  std::lock_guard lock(mu_);
  return loads_[size_t(instance)];
}

bool PdInstanceSet::candidate(int instance, std::span<const int> exclude) const {
  if (!up_[size_t(instance)] || !loads_[size_t(instance)].accepting) return false;
  return std::find(exclude.begin(), exclude.end(), instance) == exclude.end();
}

DpGroupMeans PdInstanceSet::means_after(int64_t prompt_tokens) const {
  DpGroupTotals totals(prompt_tokens);
  for (int i = 0; i < num_instances(); ++i) {
    if (up_[size_t(i)]) totals.add(loads_[size_t(i)]);
  }
  return totals.means();
}

bool PdInstanceSet::set_up_locked(int instance, bool up) {
  const bool was_up = up_[size_t(instance)] != 0;
  up_[size_t(instance)] = up ? 1 : 0;
  if (!up) {
    // A down instance's numbers are stale; the block size is the instance's, not its load.
    InstanceLoad idle;
    idle.role = role_;
    idle.block_size = loads_[size_t(instance)].block_size;
    loads_[size_t(instance)] = idle;
  }
  return was_up;
}

// ---------------------------------------------------------------------------------------------
// PrefillBalancer.

PrefillBalancer::PrefillBalancer(int num_instances, PrefillBalancerOptions options)
    : PdInstanceSet(num_instances, InstanceRole::kPrefill), options_(options) {
  check(options.prefix_memory > 0, "prefill balancer: prefix_memory must be positive, got ", options.prefix_memory);
  check(std::isfinite(options.affinity_tolerance) && options.affinity_tolerance >= 0,
        "prefill balancer: affinity_tolerance must be finite and >= 0, got ", options.affinity_tolerance);
  prefixes_.reserve(size_t(num_instances));
  for (int i = 0; i < num_instances; ++i) prefixes_.emplace_back(options.prefix_memory);
}

void PrefillBalancer::set_up(int instance, bool up) {
  check_instance(instance, "set_up");
  std::lock_guard lock(mu_);
  if (set_up_locked(instance, up) && !up) prefixes_[size_t(instance)].clear();
}

void PrefillBalancer::check_request(int64_t prompt_tokens, std::span<const uint64_t> prefix_keys) const {
  check(prompt_tokens >= 0, "prefill balancer: prompt_tokens must be >= 0, got ", prompt_tokens);
  check(int64_t(prefix_keys.size()) <= prompt_tokens / kDpBlockTokens, "prefill balancer: ", prefix_keys.size(),
        " prefix keys (full blocks of ", kDpBlockTokens, " tokens) for a prompt of ", prompt_tokens, " tokens");
}

int64_t PrefillBalancer::cached_locked(int instance, int64_t prompt_tokens,
                                       std::span<const uint64_t> prefix_keys) const {
  // Binary search for the longest held prefix: P[k] held implies P[0..k-1] held (see assign).
  const std::span<const uint64_t> chain = chain_of(prefix_keys);
  const PrefixMemory& memory = prefixes_[size_t(instance)];
  size_t lo = 0, hi = chain.size();  // lo blocks are held; more than hi are not
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    if (memory.contains(chain[mid - 1])) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return std::min(int64_t(lo) * kDpBlockTokens, std::max<int64_t>(0, prompt_tokens - 1));
}

int PrefillBalancer::choose_locked(int64_t prompt_tokens, std::span<const uint64_t> prefix_keys,
                                   std::span<const int> exclude) const {
  const DpGroupMeans means = means_after(prompt_tokens);
  auto score_of = [&](int i, int64_t cached) {
    return dp_prefill_score(loads_[size_t(i)], prompt_tokens - cached, means);
  };
  // The same arithmetic on the same state gives the same numbers, so each pass recomputes them
  // (nothing allocated per call) and classifies every instance as the earlier passes saw it.
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < num_instances(); ++i) {
    if (candidate(i, exclude)) best = std::min(best, score_of(i, cached_locked(i, prompt_tokens, prefix_keys)));
  }
  if (best == std::numeric_limits<double>::infinity()) return -1;
  auto eligible = [&](double score) {
    return score <= best + options_.affinity_tolerance || dp_scores_tied(score, best);
  };
  // Among the eligible: the longest cached prefix, then the lowest score, then the lowest index.
  int64_t longest = -1;
  double lowest = std::numeric_limits<double>::infinity();
  for (int i = 0; i < num_instances(); ++i) {
    if (!candidate(i, exclude)) continue;
    const int64_t cached = cached_locked(i, prompt_tokens, prefix_keys);
    const double score = score_of(i, cached);
    if (!eligible(score)) continue;
    if (cached > longest) {
      longest = cached;
      lowest = score;
    } else if (cached == longest) {
      lowest = std::min(lowest, score);
    }
  }
  for (int i = 0; i < num_instances(); ++i) {
    if (!candidate(i, exclude)) continue;
    const int64_t cached = cached_locked(i, prompt_tokens, prefix_keys);
    const double score = score_of(i, cached);
    if (eligible(score) && cached == longest && dp_scores_tied(score, lowest)) return i;
  }
  return -1;  // unreachable: the instance that set `lowest` qualifies
}

void PrefillBalancer::assign_locked(int instance, int64_t prompt_tokens, std::span<const uint64_t> prefix_keys) {
  // Chosen, then marked down before the assignment: nothing to add (the request will be retried
  // elsewhere, and a down instance's load and prefixes were reset).
  if (!up_[size_t(instance)]) return;
  const int64_t fresh = prompt_tokens - cached_locked(instance, prompt_tokens, prefix_keys);
  InstanceLoad& load = loads_[size_t(instance)];
  load.prefill_tokens += fresh;
  load.attention_work += squared(fresh);
  load.running += 1;
  // The longest prefix first and the shortest last, so the memory forgets a chain from its end.
  const std::span<const uint64_t> chain = chain_of(prefix_keys);
  PrefixMemory& memory = prefixes_[size_t(instance)];
  for (size_t k = chain.size(); k-- > 0;) memory.remember(chain[k], 0);
}

int PrefillBalancer::choose(int64_t prompt_tokens, std::span<const uint64_t> prefix_keys,
                            std::span<const int> exclude) const {
  check_request(prompt_tokens, prefix_keys);
  check_exclude(exclude);
  std::lock_guard lock(mu_);
  return choose_locked(prompt_tokens, prefix_keys, exclude);
}

void PrefillBalancer::assign(int instance, int64_t prompt_tokens, std::span<const uint64_t> prefix_keys) {
  check_instance(instance, "assign");
  check_request(prompt_tokens, prefix_keys);
  std::lock_guard lock(mu_);
  assign_locked(instance, prompt_tokens, prefix_keys);
}

int PrefillBalancer::choose_and_assign(int64_t prompt_tokens, std::span<const uint64_t> prefix_keys,
                                       std::span<const int> exclude) {
  check_request(prompt_tokens, prefix_keys);
  check_exclude(exclude);
  std::lock_guard lock(mu_);
  const int chosen = choose_locked(prompt_tokens, prefix_keys, exclude);
  if (chosen >= 0) assign_locked(chosen, prompt_tokens, prefix_keys);
  return chosen;
}

int64_t PrefillBalancer::cached_tokens(int instance, int64_t prompt_tokens,
                                       std::span<const uint64_t> prefix_keys) const {
  check_instance(instance, "cached_tokens");
  check_request(prompt_tokens, prefix_keys);
  std::lock_guard lock(mu_);
  return cached_locked(instance, prompt_tokens, prefix_keys);
}

double PrefillBalancer::score(int instance, int64_t prompt_tokens, std::span<const uint64_t> prefix_keys) const {
  check_instance(instance, "score");
  check_request(prompt_tokens, prefix_keys);
  std::lock_guard lock(mu_);
  const int64_t cached = cached_locked(instance, prompt_tokens, prefix_keys);
  return dp_prefill_score(loads_[size_t(instance)], prompt_tokens - cached, means_after(prompt_tokens));
}

// ---------------------------------------------------------------------------------------------
// DecodeBalancer.

DecodeBalancer::DecodeBalancer(int num_instances) : PdInstanceSet(num_instances, InstanceRole::kDecode) {}

void DecodeBalancer::set_up(int instance, bool up) {
  check_instance(instance, "set_up");
  std::lock_guard lock(mu_);
  set_up_locked(instance, up);
}

bool DecodeBalancer::fits_locked(int instance, int64_t prompt_tokens) const {
  const InstanceLoad& load = loads_[size_t(instance)];
  return load.kv_blocks_total == 0 ||
         load.kv_blocks_used + dp_kv_blocks(prompt_tokens, load.block_size) <= load.kv_blocks_total;
}

int DecodeBalancer::choose_locked(int64_t prompt_tokens, std::span<const int> exclude) const {
  const DpGroupMeans means = means_after(prompt_tokens);
  auto score_of = [&](int i) {
    const InstanceLoad& load = loads_[size_t(i)];
    return dp_decode_score(load, dp_kv_blocks(prompt_tokens, load.block_size), means);
  };
  // The candidates whose cache holds the request, when there are any; else every candidate.
  bool any_fits = false;
  for (int i = 0; i < num_instances() && !any_fits; ++i) {
    any_fits = candidate(i, exclude) && fits_locked(i, prompt_tokens);
  }
  auto considered = [&](int i) { return candidate(i, exclude) && (!any_fits || fits_locked(i, prompt_tokens)); };
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < num_instances(); ++i) {
    if (considered(i)) best = std::min(best, score_of(i));
  }
  if (best == std::numeric_limits<double>::infinity()) return -1;
  for (int i = 0; i < num_instances(); ++i) {
    if (considered(i) && dp_scores_tied(score_of(i), best)) return i;
  }
  return -1;  // unreachable: the best-scoring instance ties itself
}

void DecodeBalancer::assign_locked(int instance, int64_t prompt_tokens) {
  if (!up_[size_t(instance)]) return;  // marked down since it was chosen: see PrefillBalancer
  InstanceLoad& load = loads_[size_t(instance)];
  load.running += 1;
  load.kv_blocks_used += dp_kv_blocks(prompt_tokens, load.block_size);
}

int DecodeBalancer::choose(int64_t prompt_tokens, std::span<const int> exclude) const {
  check(prompt_tokens >= 0, "decode balancer: prompt_tokens must be >= 0, got ", prompt_tokens);
  check_exclude(exclude);
  std::lock_guard lock(mu_);
  return choose_locked(prompt_tokens, exclude);
}

void DecodeBalancer::assign(int instance, int64_t prompt_tokens) {
  check_instance(instance, "assign");
  check(prompt_tokens >= 0, "decode balancer: prompt_tokens must be >= 0, got ", prompt_tokens);
  std::lock_guard lock(mu_);
  assign_locked(instance, prompt_tokens);
}

int DecodeBalancer::choose_and_assign(int64_t prompt_tokens, std::span<const int> exclude) {
  check(prompt_tokens >= 0, "decode balancer: prompt_tokens must be >= 0, got ", prompt_tokens);
  check_exclude(exclude);
  std::lock_guard lock(mu_);
  const int chosen = choose_locked(prompt_tokens, exclude);
  if (chosen >= 0) assign_locked(chosen, prompt_tokens);
  return chosen;
}

double DecodeBalancer::score(int instance, int64_t prompt_tokens) const {
  check_instance(instance, "score");
  check(prompt_tokens >= 0, "decode balancer: prompt_tokens must be >= 0, got ", prompt_tokens);
  std::lock_guard lock(mu_);
  const InstanceLoad& load = loads_[size_t(instance)];
  return dp_decode_score(load, dp_kv_blocks(prompt_tokens, load.block_size), means_after(prompt_tokens));
}

}  // namespace dsinfer::parallel
