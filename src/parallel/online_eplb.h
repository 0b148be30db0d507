// Online EPLB: the routed experts re-placed from the live load while the group serves, as DeepSeek
// re-runs its balancer on recent statistics. Every rank of the group calls at_step_boundary in
// lockstep (the engine's step loop, between steps), and a rebalance goes through three phases:
//
//   plan    every `interval` steps (or seconds, by rank 0's clock) the ranks' loads recorded since
//           the last plan are summed; rank 0 runs EPLB on them, gives each rank the bin of
//           experts that overlaps most with what it holds (keep_in_place), and broadcasts the
//           new physical-slot table. A plan
//           that would not lower the busiest rank's load by kMinGain is dropped.
//   move    each rank posts non-blocking receives for the experts it will newly hold, into a
//           staging area, and sends of the experts others need from it, straight from its live
//           weights (which do not change until the switch). Steps go on with the old placement
//           while MPI moves the bytes: the transfers are tested at every boundary and by the
//           executor's polls during the forward pass. The move is paced so that no boundary
//           holds a step up for long: at most kMaxBytesInFlight of a rank's transfers are posted
//           at once, and a boundary posts and checksums only for half an ordinary step (every
//           rank posts its transfers in the one global move order, so the earliest unfinished
//           move is always posted on both of its sides: pacing cannot deadlock).
//   switch  at the first boundary where every rank has all its new experts, each checked against
//           the checksum that expert has had since load, every rank adopts the new placement
//           before the next step. If any copy fails its checksum, every rank drops the move and
//           keeps serving on the old placement: no rank ever computes with a half-written expert.
//
// The cost on the critical path is the boundary work (plan, posting, testing, checksums of
// arrived experts, the switch's pointer moves); metrics() has its longest beside the median step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/mlp.h"
#include "parallel/communicator.h"
#include "parallel/eplb.h"
#include "parallel/expert_load_recorder.h"
#include "parallel/expert_parallel_moe.h"
#include "parallel/online_eplb_metrics.h"

namespace dsinfer::parallel {

struct OnlineEplbOptions {
  int64_t interval_steps = 0;    // re-plan every this many forward steps (0: by seconds)
  double interval_seconds = 0;   // or this often, by rank 0's clock (0 and 0: never)
  EplbPolicy policy = EplbPolicy::kDeepSeek;
  // Test-only fault injection, from DSINFER_EPLB_FAULT: "corrupt:R" flips a byte of the first
  // expert rank R receives (its checksum must catch it), "exit:R" ends rank R mid-move.
  std::string fault;
};

class OnlineEplb {
 public:
  // Hashes this rank's experts and learns every expert's checksum from its holders (a
  // collective: every rank constructs it at the same point). Throws Error if two replicas of an
  // expert differ.
  OnlineEplb(Communicator& comm, ExpertParallelMoe& executor, ExpertLoadRecorder& recorder,
             const model::ModelConfig& cfg, const OnlineEplbOptions& options);
  // A move still in flight (the group stopped mid-move) is finished, briefly bounded, before its
  // buffers go: MPI must not write into freed staging memory, nor finalise with requests open.
  ~OnlineEplb();
  OnlineEplb(const OnlineEplb&) = delete;
  OnlineEplb& operator=(const OnlineEplb&) = delete;

  // Called by every rank between steps, in lockstep; `stepped`: a forward step just ran.
  void at_step_boundary(bool stepped);
  OnlineEplbMetrics metrics() const { return metrics_; }

  // The smallest relative drop in the busiest rank's planned load worth a move.
  static constexpr double kMinGain = 0.05;
  // A rank's expert bytes posted and not yet arrived (always at least one expert).
  static constexpr int64_t kMaxBytesInFlight = int64_t(32) << 20;

 private:
  struct Move {
    int layer = 0, dst = 0, dst_slot = 0, src = 0, src_slot = 0;
    int32_t expert = 0;
  };
  struct Incoming {
    const Move* move = nullptr;
    model::PackedMlp staged;
    Exchange exchange;
    int64_t bytes = 0;
    bool arrived = false, verified = false, ok = false;
  };
  struct Outgoing {
    Exchange exchange;
    int64_t bytes = 0;
    bool done = false;
  };

  bool due(bool stepped);
  void plan();
  void start_move();
  // Posts this rank's next transfers while under the byte cap and before `deadline`.
  void post_some(double deadline);
  // Tests what is in flight; checksums what arrived, until `deadline`.
  void check_arrivals(double deadline);
  // 2: some rank still moving, 1: all done and some copy failed, 0: all done and verified.
  int agree();
  void switch_placement();
  void drop_move();
  uint64_t expected_checksum(int layer, int32_t expert) const;

  Communicator& comm_;
  ExpertParallelMoe& executor_;
  ExpertLoadRecorder& recorder_;
  model::ModelConfig cfg_;
  OnlineEplbOptions options_;
  std::vector<int> moe_layers_;                 // model layer index of each MoE layer
  std::vector<std::vector<uint64_t>> checksum_;  // [model layer][logical expert]

  int64_t steps_since_plan_ = 0;
  double last_plan_time_ = 0, move_started_ = 0, last_iteration_ = 0;
  std::vector<double> recent_steps_;  // ordinary iteration times, a ring
  std::vector<double> sorted_steps_;  // their median's scratch
  size_t recent_next_ = 0;

  bool moving_ = false;
  ExpertPlacement next_;
  double next_imbalance_before_ = 0, next_imbalance_after_ = 0;
  std::vector<Move> moves_;
  std::vector<Incoming> incoming_;    // reserved for every receive: posted buffers never move
  std::vector<Outgoing> outgoing_;   // likewise for sends
  size_t next_post_ = 0;             // the next move (in moves_) this rank may have to post
  int64_t bytes_in_flight_ = 0;
  OnlineEplbMetrics metrics_;
};

// The plan's slot table for `layer` with its ranks' sets of experts (EPLB's bins, each as balanced
// on any rank) given to the ranks that already hold most of each, greedily: the same balance,
// far fewer experts to move. EPLB numbers its bins afresh each time, so a plan for a barely
// changed load would otherwise reshuffle most slots.
std::vector<int32_t> keep_in_place(const ExpertPlacement& plan, const ExpertPlacement& current, int layer);

// The checksum of an expert's packed bytes (model::PackedMlp::buffers), which a moved copy must match.
uint64_t packed_checksum(const model::PackedMlp& e);

}  // namespace dsinfer::parallel
