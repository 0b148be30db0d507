// What online EPLB (parallel/online_eplb.h) counts, for /metrics: its own header, so the engine's
// metrics can carry it without the rest of the parallel layer.
#pragma once

#include <cstdint>

namespace dsinfer::parallel {

struct OnlineEplbMetrics {
  uint64_t rebalances = 0;       // moves switched to
  uint64_t aborted = 0;          // moves dropped (a copy failed its checksum)
  uint64_t skipped = 0;          // plans not worth moving for (or no load yet)
  uint64_t experts_moved = 0, bytes_moved = 0;  // over the group
  // Busiest rank over the mean, planned from the load since the last plan (mean over MoE
  // layers): under the placement before the last rebalance, and under the one it switched to.
  double imbalance_before = 0, imbalance_after = 0;
  double last_move_seconds = 0;         // plan to switch, wall time
  double longest_boundary_seconds = 0;  // most time one boundary spent on EPLB (plan, post, test, switch)
  double median_step_seconds = 0;       // of recent ordinary step-loop iterations, for comparison
};

}  // namespace dsinfer::parallel
