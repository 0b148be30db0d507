// What the engine counts for /metrics: cumulative counters, latency histograms and gauges,
// copied out as one consistent snapshot. Rendering (Prometheus text) belongs to the serve layer.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "cache/disk_tier_metrics.h"
#include "parallel/online_eplb_metrics.h"

namespace dsinfer::engine {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v) {
    size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;
    ++counts_[i];
    sum_ += v;
    ++count_;
  }
  const std::vector<double>& bounds() const { return bounds_; }
  const std::vector<uint64_t>& counts() const { return counts_; }  // per bucket, last is +Inf
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// One rank of a data-parallel group as its last status said (EngineMetrics::ranks).
struct RankGauges {
  int64_t running = 0, waiting = 0, kv_blocks_used = 0, kv_blocks_total = 0;
  int64_t prefill_tokens = 0;  // prompt tokens still to prefill
  uint64_t steps = 0, step_tokens = 0;  // forward steps, and tokens (prompt and generated) fed to them
  uint64_t expert_rows = 0;             // (token, expert) rows its routed experts computed
  uint64_t mtp_drafted = 0, mtp_accepted = 0, mtp_verify_steps = 0, mtp_emitted = 0;  // EngineMetrics'
};

struct EngineMetrics {
  // Counters.
  uint64_t requests_finished_stop = 0, requests_finished_length = 0, requests_aborted = 0;
  uint64_t prompt_tokens = 0, cached_prompt_tokens = 0, generation_tokens = 0;
  uint64_t disk_cached_prompt_tokens = 0;  // of cached_prompt_tokens, those the disk tier loaded
  uint64_t steps = 0, step_tokens = 0, preemptions = 0, prefix_evictions = 0;
  // Speculative decoding (engine/mtp_drafter.h): drafts compared with the token sampled at their
  // row, those equal to it, and the sequence-steps that fed drafts. The acceptance rate is
  // accepted / drafted; a step that fed drafts emitted 1 + its accepted ones.
  int draft_tokens = 0;  // per step, 0: off
  uint64_t mtp_drafted = 0, mtp_accepted = 0, mtp_verify_steps = 0, mtp_emitted = 0;
  double mtp_acceptance_rate() const { return mtp_drafted ? double(mtp_accepted) / double(mtp_drafted) : 0.0; }
  // 1 without drafts.
  double mtp_tokens_per_step() const { return mtp_verify_steps ? double(mtp_emitted) / double(mtp_verify_steps) : 1.0; }
  // Seconds in the main model's forward passes and in the MTP module's (all steps): their ratio
  // per step is what a draft costs (docs/benchmarks.md).
  double forward_seconds = 0, mtp_seconds = 0;
  // Gauges.
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_cached = 0, kv_blocks_free = 0;
  // The prefill balancer's inputs: prompt tokens still to prefill, and the sum of their squares
  // per request (core-attention work); requests waiting for their KV from a prefill instance.
  int64_t prefill_tokens = 0;
  double attention_work = 0;
  int64_t importing = 0;
  int64_t kv_bytes_per_token = 0;  // every layer's latent row: what one cached token holds
  // Histograms (seconds, tokens).
  Histogram ttft{{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  Histogram itl{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}};
  Histogram e2e{{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}};
  Histogram step_tokens_hist{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}};
  // A data-parallel group's ranks (rank 0 first); empty for a single process. The gauges above
  // are then the group's sums.
  std::vector<RankGauges> ranks;
  std::optional<parallel::OnlineEplbMetrics> online_eplb;  // when the group rebalances its experts
  std::optional<cache::DiskTierMetrics> kv_disk;  // when the prefix cache has a disk tier (this rank's)
};

}  // namespace dsinfer::engine
