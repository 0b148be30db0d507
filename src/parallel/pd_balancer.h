// PrefillBalancer and DecodeBalancer: the prefill/decode router's choice of instances under
// DeepSeek's disaggregated serving (`dsinfer router --prefill URL... --decode URL...`). For each
// request the router picks one prefill instance and one decode instance; each instance's load is
// what its `GET /pd/status` last said (parse_instance_status, report(), polled every ~100 ms) plus
// what the router has assigned to it since (assign()), so a burst between two polls spreads out.
// The formulas are DpBalancer's (dp_balancer.h: dp_prefill_score, dp_decode_score, the group
// means of DpGroupTotals); what the router adds is instances that come and go (set_up), retries
// (exclude) and, for prefill, prefix-cache affinity.
//
// Which instances count, for both balancers:
//  - a candidate is an instance that is up (set_up; every instance starts up and idle), whose last
//    report says "accepting": true, and that is not in the request's `exclude` list (instances
//    already tried for it). choose() returns -1 when there is no candidate;
//  - the group means are over the instances that are up (candidates or not: an excluded or
//    non-accepting instance still carries its load), after adding the request as DpGroupTotals
//    does (L tokens, L^2 work, one request). Prefill counts the request uncached here, so every
//    candidate is scored on one scale;
//  - set_up(i, false) also resets instance i's load to idle and, for prefill, forgets the prefixes
//    sent to it: when it comes back (set_up(i, true)) it is likely a restarted process with an
//    empty cache, and its next report gives its real load. report() never changes up/down.
//
// PrefillBalancer, a request of L prompt tokens with prefix keys P[0..m-1] (P[k]: the chained key
// of the prompt's first k+1 full 64-token blocks, so P[k] implies P[0..k-1]; m <= L/64; a 0 key
// ends the chain):
//  - cached(i) = 64 * (the largest n with P[n-1] in instance i's prefix memory), at most L - 1
//    (an instance always prefills a prompt's last token), 0 when none; new(i) = L - cached(i);
//  - score(i) = dp_prefill_score(load_i, new(i)) = (prefill_tokens_i + new(i)) / mean_tokens
//    + (attention_work_i + new(i)^2) / mean_work: DeepSeek's prefill balancer (input tokens and
//    core-attention work), with the tokens an instance holds not counted as work it would do;
//  - affinity: let best be the lowest candidate score. The candidates with score(i) <= best +
//    affinity_tolerance (absolute, default kPrefillAffinityTolerance = 0.25) are eligible, and
//    among them the longest cached(i) wins, then the lowest score (ties within 1e-9 relative,
//    dp_scores_tied), then the lowest index. So the instance holding the longest prefix wins
//    unless choosing it leaves it more than a quarter of a mean instance's load (in the score's
//    units: a quarter of the mean queued tokens, or of the mean attention work, or a mix) above
//    the best choice; then the next-longest eligible holder, or plainly the best score. With no
//    prefix held anywhere this is the lowest score, ties to the lowest index.
//  - assign(i) adds the request to i as scored: prefill_tokens += new(i), attention_work +=
//    new(i)^2, running += 1 (new(i), not L: the tokens i holds cost it no prefill, and its next
//    report counts tokens left to prefill), and remembers P[m-1], ..., P[0] for i, the shortest
//    prefix last, so a memory that forgets its least recently remembered key first forgets a chain
//    from its end and "P[k] held implies P[0..k-1] held" stays true (cached() relies on it).
//  - prefix memory: per instance, the keys of its last prefix_memory remember()s (default
//    kPrefillPrefixMemory = 65,536 keys, ~1.5 MB per instance, allocated once); older keys are
//    forgotten (PrefixMemory, least recently remembered first).
//
// DecodeBalancer, a request of L prompt tokens (its KV arrives from the prefill instance): as
// DpBalancer's kDecode, score(i) = dp_decode_score(load_i, ceil(L / block_size_i)) =
// (kv_blocks_used_i + ceil(L / block_size_i)) / kv_blocks_total_i (0 when the total is 0) +
// (running_i + 1) / max(1, mean_running); the lowest score wins, ties to the lowest index. One
// rule more than kDecode: when some candidate's free KV holds the request (kv_blocks_used_i +
// ceil(L / block_size_i) <= kv_blocks_total_i, or the total is 0), only such candidates are scored,
// so a long prompt is not sent where its KV cannot land while another instance has room (the
// score alone lets a few running requests outweigh an overfull cache).
// assign(i) adds running += 1 and kv_blocks_used += ceil(L / block_size_i) (block_size_i as i last
// reported it; 64 before its first report).
//
// Deterministic: the same reports, set_ups and requests give the same choices. Thread safety:
// every public method locks the balancer's mutex for a short critical section (no allocation,
// O(instances * log m) prefix look-ups for prefill), so request threads and the polling thread
// may call them concurrently. choose() then assign() is two critical sections, and two threads
// may choose the same instance in between; choose_and_assign() does both under one lock, which
// spreads a concurrent burst exactly as a sequential one.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "parallel/dp_balancer.h"
#include "parallel/prefix_memory.h"

namespace dsinfer::parallel {

enum class InstanceRole { kPrefill, kDecode };

// One instance's load as its /pd/status reports it: DpBalancer's RankLoad numbers (prefill_tokens,
// attention_work, running, kv_blocks_used, kv_blocks_total) plus what the router needs besides.
struct InstanceLoad : RankLoad {
  InstanceRole role = InstanceRole::kPrefill;
  bool accepting = true;                // false: up but taking no new requests (not a candidate)
  int64_t waiting = 0;                  // of `running`, those not yet scheduled (informational)
  int64_t block_size = kDpBlockTokens;  // tokens per KV block (the unit of kv_blocks_*)
};

// Reads a /pd/status body (a JSON object). Required: "role" ("prefill" or "decode"), "accepting"
// (bool), "running", "waiting", "prefill_tokens", "kv_blocks_used", "kv_blocks_total" (integers
// >= 0), "attention_work" (a finite number >= 0), "block_size" (an integer > 0); kv_blocks_used
// must not exceed a non-zero kv_blocks_total. Other keys ("kv_layout", "transfer_address", ...)
// are informational and ignored. Throws FieldError (an Error) naming `origin` and the field, e.g.
//   http://10.0.0.2:8001/pd/status: field 'running' must be a non-negative integer, got -1
InstanceLoad parse_instance_status(const nlohmann::json& status, const std::string& origin = "/pd/status");

// What both balancers share: the instances' loads, up/down, report() and the mutex.
class PdInstanceSet {
 public:
  // Replaces instance i's load with a fresh report. Throws Error on an index out of range, a
  // negative count, attention work that is negative or not finite, a block_size <= 0, or a role
  // other than the balancer's (a decode instance listed as prefill is a configuration error).
  void report(int instance, const InstanceLoad& load);
  bool is_up(int instance) const;
  InstanceLoad load(int instance) const;  // a copy, taken under the lock
  int num_instances() const { return int(loads_.size()); }
  InstanceRole role() const { return role_; }

 protected:
  PdInstanceSet(int num_instances, InstanceRole role);
  void check_instance(int instance, const char* what) const;
  void check_exclude(std::span<const int> exclude) const;
  // Up, accepting and not excluded (call with mu_ held).
  bool candidate(int instance, std::span<const int> exclude) const;
  // The group means over the up instances after adding a request of L tokens (mu_ held).
  DpGroupMeans means_after(int64_t prompt_tokens) const;
  // Marks up/down; down resets the load to idle (mu_ held). Returns whether it was up.
  bool set_up_locked(int instance, bool up);

  const char* name() const { return role_ == InstanceRole::kPrefill ? "prefill balancer" : "decode balancer"; }

  mutable std::mutex mu_;
  InstanceRole role_;
  std::vector<InstanceLoad> loads_;
  std::vector<char> up_;
};

// The prefill balancer's defaults (see the rules above).
inline constexpr int kPrefillPrefixMemory = 65536;
inline constexpr double kPrefillAffinityTolerance = 0.25;

struct PrefillBalancerOptions {
  // Keys remembered per instance (PrefixMemory's capacity).
  int prefix_memory = kPrefillPrefixMemory;
  // How much worse (absolute, in score units) than the best score an instance holding a longer
  // prefix may be and still win; 0 leaves affinity only the credit of its cached tokens.
  double affinity_tolerance = kPrefillAffinityTolerance;
};

class PrefillBalancer : public PdInstanceSet {
 public:
  // Throws Error unless num_instances > 0, options.prefix_memory > 0 and the tolerance is finite
  // and >= 0. Every instance starts up, idle, remembering no prefix.
  explicit PrefillBalancer(int num_instances, PrefillBalancerOptions options = {});

  // Marks an instance down (never chosen; its load reset and its prefixes forgotten) or up again.
  void set_up(int instance, bool up);

  // The instance for the request by the rules above, or -1 when no instance is a candidate.
  // `exclude`: instances not to choose (already tried for this request). Throws Error on a
  // negative prompt, prefix keys covering more than the prompt, or an index out of range.
  int choose(int64_t prompt_tokens, std::span<const uint64_t> prefix_keys, std::span<const int> exclude = {}) const;
  // Adds the request to instance i (see the rules) and remembers its prefix keys for i. Does
  // nothing when i is down (marked down between choose() and assign(): the request will fail
  // there and be retried elsewhere). Throws Error as choose() does.
  void assign(int instance, int64_t prompt_tokens, std::span<const uint64_t> prefix_keys);
  // choose() and, when it found an instance, assign() to it, under one lock.
  int choose_and_assign(int64_t prompt_tokens, std::span<const uint64_t> prefix_keys,
                        std::span<const int> exclude = {});

  // For inspection (tests, /metrics): cached(i) and score(i) of the rules for this request now.
  int64_t cached_tokens(int instance, int64_t prompt_tokens, std::span<const uint64_t> prefix_keys) const;
  double score(int instance, int64_t prompt_tokens, std::span<const uint64_t> prefix_keys) const;
  const PrefillBalancerOptions& options() const { return options_; }

 private:
  void check_request(int64_t prompt_tokens, std::span<const uint64_t> prefix_keys) const;
  int64_t cached_locked(int instance, int64_t prompt_tokens, std::span<const uint64_t> prefix_keys) const;
  int choose_locked(int64_t prompt_tokens, std::span<const uint64_t> prefix_keys, std::span<const int> exclude) const;
  void assign_locked(int instance, int64_t prompt_tokens, std::span<const uint64_t> prefix_keys);

  PrefillBalancerOptions options_;
  std::vector<PrefixMemory> prefixes_;  // per instance: the block keys sent there
};

class DecodeBalancer : public PdInstanceSet {
 public:
  // Throws Error unless num_instances > 0. Every instance starts up and idle.
  explicit DecodeBalancer(int num_instances);

  // Marks an instance down (never chosen; its load reset) or up again.
  void set_up(int instance, bool up);

  // The instance for a request of prompt_tokens by the rules above, or -1 when no instance is a
  // candidate. Throws Error on a negative prompt or an index out of range.
  int choose(int64_t prompt_tokens, std::span<const int> exclude = {}) const;
  // Adds the request to instance i: running += 1, kv_blocks_used += ceil(L / block_size_i);
  // nothing when i is down (as PrefillBalancer::assign).
  void assign(int instance, int64_t prompt_tokens);
  // choose() and, when it found an instance, assign() to it, under one lock.
  int choose_and_assign(int64_t prompt_tokens, std::span<const int> exclude = {});

  // score(i) of the rules for this request now, for inspection.
  double score(int instance, int64_t prompt_tokens) const;

 private:
  // Whether the request's blocks fit in instance i's free KV (always, when its total is 0).
  bool fits_locked(int instance, int64_t prompt_tokens) const;
  int choose_locked(int64_t prompt_tokens, std::span<const int> exclude) const;
  void assign_locked(int instance, int64_t prompt_tokens);
};

}  // namespace dsinfer::parallel
