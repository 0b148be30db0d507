// Expert parallelism for the commands that run the model (serve, generate, logits). Under
// `mpirun -np N` every rank runs the same command; this is where a rank joins the group:
//   1. the ranks compare their command lines and refuse to start, naming the flag, if they differ;
//   2. each loads the model with an ExpertParallelMoe holding only its experts (contiguous blocks
//      of n_routed / N, or --eplb-placement), and logs what it holds;
//   3. every rank learns whether every other loaded (a rank that failed says why, and all exit),
//      and that they all loaded the same checkpoint (fingerprint).
// Without a launcher the group is this process alone and the model runs LocalMoe as always.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "engine/engine.h"
#include "model/deepseek.h"
#include "parallel/communicator.h"
#include "parallel/expert_load_recorder.h"
#include "parallel/expert_parallel_moe.h"
#include "parallel/online_eplb.h"

namespace dsinfer::app {

struct GroupFlags {
  int64_t ep_size = 0;        // --ep-size: must equal the number of ranks (0: whatever it is)
  std::string placement;      // --eplb-placement FILE (`dsinfer eplb --json`)
  // --redundant-experts R with --expert-load FILE: R extra slots, placed at start by parallel::eplb
  // (--eplb-policy deepseek|refined) from a recorded load (`dsinfer generate --dump-expert-load`).
  int64_t redundant_experts = 0;
  std::string expert_load;
  std::string eplb_policy = "deepseek";
  // --eplb-interval N (forward steps) or Ns (seconds): online EPLB re-places the experts from the
  // live load that often (parallel/online_eplb.h); 0: never.
  int64_t eplb_interval_steps = 0;
  double eplb_interval_seconds = 0;
  bool online_eplb() const { return eplb_interval_steps > 0 || eplb_interval_seconds > 0; }
  parallel::DispatchMode dispatch = parallel::DispatchMode::kAuto;  // --ep-dispatch
  int64_t low_latency_tokens = 128;  // --ep-low-latency-tokens
  double timeout_s = 60;             // --ep-timeout: the watchdog on every wait for another rank
};

// Reads the group flags (and --expert-activations into `opt`).
GroupFlags group_flags(Args& args, model::ModelOptions& opt);

// The flags above, for the commands' usage text.
#define GROUP_FLAGS_USAGE                                                                                   \
  "       under mpirun: [--ep-size N] [--eplb-placement PLAN.json | --redundant-experts R [--expert-load LOAD.json]\n" \
  "       [--eplb-policy deepseek|refined]] [--eplb-interval STEPS|SECONDSs] [--ep-dispatch auto|normal|low-latency]\n" \
  "       [--ep-low-latency-tokens 128] [--ep-timeout 60] [--expert-activations bf16|fp8]\n"                 \
  "       [--micro-batches 1|2]   (2: overlap one micro-batch's dispatch/combine with the other's compute; docs/parallel.md)"

// A rank other than 0 serves by stepping with the group until rank 0 stops it.
int serve_rank(engine::Engine& eng);

class RankContext {
 public:
  // Joins the world group (MPI_COMM_WORLD under a launcher, else a group of one) and checks the
  // ranks run the same command line.
  explicit RankContext(const Args& args);
  // This rank's model. Throws Error on every rank if any rank failed, naming it and why.
  std::unique_ptr<model::DeepSeekModel> load(const std::string& dir, model::ModelOptions opt, const GroupFlags& flags);

  bool is_root() const { return comm_.is_root(); }
  int rank() const { return comm_.rank(); }
  int size() const { return comm_.size(); }
  // For the Engine: the group, or null when alone.
  parallel::Communicator* group() { return comm_.size() > 1 ? &comm_ : nullptr; }
  const parallel::ExpertParallelMoe* executor() const { return executor_.get(); }
  // For the Engine: the work between a group's steps (expert load, online EPLB), or null.
  engine::StepBoundaryTask* boundary_task() { return task_.get(); }

 private:
  parallel::Communicator comm_;
  std::unique_ptr<parallel::ExpertParallelMoe> executor_;
  std::unique_ptr<parallel::ExpertLoadRecorder> recorder_;  // online EPLB's load, when on
  std::unique_ptr<parallel::OnlineEplb> eplb_;
  std::unique_ptr<engine::StepBoundaryTask> task_;
};

}  // namespace dsinfer::app
