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
  std::optional<parallel::OnlineEplbMetrics> online_eplb() const override {
    if (!eplb_) return std::nullopt;
    return eplb_->metrics();
  }

 private:
  const parallel::ExpertParallelMoe& executor_;
  parallel::OnlineEplb* eplb_;
  mutable std::optional<uint64_t> baseline_;
};

}  // namespace dsinfer::app
