// The engine's step-boundary hook for an expert-parallel group: the per-rank expert load for
// /metrics (ExpertParallelMoe's rows), and online EPLB when --eplb-interval asks for it.
#pragma once

#include <optional>

#include "engine/step_boundary_task.h"
#include "parallel/expert_parallel_moe.h"
#include "parallel/online_eplb.h"

namespace dsinfer::app {

class ExpertBalanceTask : public engine::StepBoundaryTask {
 public:
  // `eplb` may be null (no online rebalancing); both must outlive the task.
  ExpertBalanceTask(const parallel::ExpertParallelMoe& executor, parallel::OnlineEplb* eplb)
      : executor_(executor), eplb_(eplb) {}

  void at_step_boundary(bool stepped) override {
    if (eplb_) eplb_->at_step_boundary(stepped);
  }
  // Since the first call, which comes after the engine's warm-up step (not a load to show).
  uint64_t expert_rows() const override {
    const uint64_t rows = executor_.stats().expert_rows;
    if (!baseline_) baseline_ = rows;
    return rows - *baseline_;
  }
  engine::ExpertBalanceMetrics balance_metrics() const override {
    engine::ExpertBalanceMetrics m;
    if (!eplb_) return m;
    const parallel::OnlineEplbMetrics e = eplb_->metrics();
    m.enabled = true;
    m.rebalances = e.rebalances;
    m.aborted = e.aborted;
    m.skipped = e.skipped;
    m.experts_moved = e.experts_moved;
    m.bytes_moved = e.bytes_moved;
    m.imbalance_before = e.imbalance_before;
    m.imbalance_after = e.imbalance_after;
    m.last_move_seconds = e.last_move_seconds;
    m.longest_boundary_seconds = e.longest_boundary_seconds;
    m.median_step_seconds = e.median_step_seconds;
    return m;
  }

 private:
  const parallel::ExpertParallelMoe& executor_;
  parallel::OnlineEplb* eplb_;
  mutable std::optional<uint64_t> baseline_;
};

}  // namespace dsinfer::app
