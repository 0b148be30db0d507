// Work that rides on an expert-parallel group's step loop (engine_group.cpp): online EPLB moves
// expert weights between steps. The engine calls it on the step thread of every rank at every
// iteration of the loop, in lockstep, after the step's updates were exchanged; it may use the
// group's collectives, and an exception from it fails the group like any other group error.
// The engine only carries what it reports to /metrics; the app wires parallel::OnlineEplb in.
#pragma once

#include <cstdint>
#include <optional>

#include "parallel/online_eplb_metrics.h"

namespace dsinfer::engine {

class StepBoundaryTask {
 public:
  virtual ~StepBoundaryTask() = default;
  // `stepped`: the group ran a forward step in this iteration (else it was idle).
  virtual void at_step_boundary(bool stepped) = 0;
  // (token, expert) rows this rank's experts have computed: the per-rank load /metrics shows.
  virtual uint64_t expert_rows() const = 0;
  // Online EPLB's counters, when it runs (rank 0's are the ones /metrics shows).
  virtual std::optional<parallel::OnlineEplbMetrics> online_eplb() const = 0;
};

}  // namespace dsinfer::engine
