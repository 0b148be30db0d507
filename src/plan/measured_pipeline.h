// The simulator's overlap model fed with measured costs instead of the cost model's: bench/
// ep_bench times dsinfer's own forward steps (one and two micro-batches) stage by stage on every
// rank, writes them with the bytes each rank sent and MPI's point-to-point latency and bandwidth
// measured in the same run (a "stage costs" file), and `dsinfer simulate --stage-costs FILE` runs
// the graph below on them and prints the predicted step time beside the measured one.
//
// The graph mirrors DeepSeekModel's schedule (model/deepseek.cpp), not an idealised one:
//   one micro-batch   per layer: attention; MoE layers: gate + dispatch post, shared experts,
//                     routed experts (after the dispatch arrived), combine finish (after the
//                     combine arrived); dense layers: the MLP
//   two micro-batches per layer: for A then B: finish of the previous layer, attention, gate +
//                     dispatch post; then for A then B: routed experts, shared experts
// The compute lane runs its operations in that program order (the model never reorders: a wait
// blocks), each also waiting for the transfer it needs; the network lane carries one transfer at
// a time: dispatch and combine of each (layer, micro-batch), each latency + bytes / bandwidth.
// Normal mode's count exchange (a blocking all-to-all before each dispatch) is one latency on the
// network lane that the compute lane waits for. What the graph leaves idle on the compute lane is
// the predicted exposed communication.
//
// Costs per step are split evenly over the layers that have the stage and over the micro-batches
// (attention over all layers, the MoE stages over the MoE layers, the MLP over the dense layers);
// what the step spent outside the named stages ("other": norms, residual adds, embedding, LM head)
// is one operation at the end.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/pipeline_sim.h"

namespace dsinfer::plan {

// Compute seconds of one forward step on one rank (the mean over ranks), communication waits
// taken out: attention (MLA with its projections), the gate (route), the dispatch post (begin),
// this rank's routed experts (compute, without the dispatch wait), shared experts, the combine
// finish (the weighted sum, without the combine wait), the dense MLP, and the rest.
struct StageSeconds {
  double attention = 0, route = 0, dispatch_post = 0, experts = 0, shared = 0, combine_finish = 0, dense = 0,
         other = 0;
  double total() const { return attention + route + dispatch_post + experts + shared + combine_finish + dense + other; }
};

// One measured configuration: a phase run with 1 or 2 micro-batches.
struct MeasuredStep {
  std::string phase;    // "decode", "prefill" (a label)
  std::string payload;  // "bf16", "fp8" (a label)
  int micro_batches = 1;
  int64_t tokens_per_rank = 0;
  bool normal_mode = false;  // DeepEP's normal dispatch (a blocking count exchange per layer and micro-batch)
  StageSeconds stages;
  // Bytes sent to other ranks per rank per step (all MoE layers and micro-batches together).
  double dispatch_bytes = 0, combine_bytes = 0;
  double measured_step_s = 0;     // the slowest rank's step, median over repetitions
  double measured_exposed_s = 0;  // time blocked in dispatch/combine waits + count exchanges, mean over ranks
};

// A transfer of n bytes takes latency + n / bandwidth; nothing when n is 0.
struct NetworkCosts {
  double latency_s = 0;
  double bytes_per_s = 0;  // 0 only where nothing crosses a wire (one rank)
  double transfer_seconds(double bytes) const;
};

struct StageCosts {
  std::string origin;  // the file, for messages
  std::string source;  // what measured it ("ep_bench")
  std::string model;   // a label ("bench-v3-small cut to 4 layers")
  int ranks = 1;
  int layers = 0, moe_layers = 0;
  NetworkCosts network;
  std::vector<MeasuredStep> steps;
};

// The file's format (docs/simulator.md, "Measured stage costs"): a "dsinfer-stage-costs-1" object.
// Throws FieldError naming the file and the key for anything missing, mistyped, out of range or
// unknown.
StageCosts parse_stage_costs(const nlohmann::json& j, const std::string& origin);
StageCosts load_stage_costs(const std::string& path);
nlohmann::json to_json(const StageCosts& c);

struct PredictedStep {
  double step_s = 0;      // the graph's makespan
  double compute_s = 0;   // busy time of the compute lane
  double exposed_s = 0;   // step - compute: the compute lane waiting for the network
  double network_s = 0;   // busy time of the network lane
};

// The operation graph of `m`'s costs run as `micro_batches` micro-batches (1 or 2): each
// micro-batch gets 1/micro_batches of every stage's cost and bytes, so a step measured with one
// micro-batch can be predicted with two.
std::vector<PipelineOp> measured_step_graph(const MeasuredStep& m, int layers, int moe_layers,
                                            const NetworkCosts& net, int micro_batches);
PredictedStep predict_step(const MeasuredStep& m, int layers, int moe_layers, const NetworkCosts& net,
                           int micro_batches);

// One line of `simulate --stage-costs`: a measured configuration, its prediction from its own
// costs, and for two micro-batches also the prediction from the one-micro-batch costs of the same
// phase and payload (what the overlap would give, predicted before running it).
struct StageComparison {
  const MeasuredStep* measured = nullptr;
  PredictedStep predicted;
  bool has_from_one = false;
  PredictedStep from_one;
};
std::vector<StageComparison> compare_stage_costs(const StageCosts& c);
std::string format_stage_comparison(const StageCosts& c, const std::vector<StageComparison>& rows);
nlohmann::json to_json(const StageCosts& c, const std::vector<StageComparison>& rows);

}  // namespace dsinfer::plan
