// Discrete-event simulation of one GPU's forward step as a graph of operations on two lanes:
// the compute stream (SMs) and the network (NIC/NVLink, driven by DeepEP). An operation starts
// when all its dependencies have finished and its lane is free; among ready operations a lane
// takes the one with the smallest (layer, stage, micro_batch), which is the static issue order
// of DeepSeek's two-micro-batch overlap: while micro-batch 0 waits on its dispatch, the compute
// stream runs micro-batch 1's attention, and so on. The same engine runs the prefill overlap and
// the decode five-stage pipeline; they differ only in the operation graph they build.
#pragma once

#include <string>
#include <vector>

namespace dsinfer::plan {

enum class Lane { kCompute = 0, kNetwork = 1 };

// The stages of one MoE layer in issue order (PipelineOp::stage), shared by the prefill and
// decode graphs so both pipelines order their operations the same way.
enum Stage { kAttention = 0, kDispatch = 1, kShared = 2, kRouted = 3, kCombine = 4 };

struct PipelineOp {
  std::string name;  // category in the breakdown ("routed experts", "dispatch", ...)
  Lane lane = Lane::kCompute;
  double seconds = 0;
  double flops = 0;         // model FLOPs, for utilisation
  std::vector<int> deps;    // indices of earlier operations
  int layer = 0, stage = 0, micro_batch = 0;
};

struct BusyTime {
  std::string name;
  Lane lane = Lane::kCompute;
  double seconds = 0;
};

struct PipelineResult {
  double makespan = 0;
  double busy[2] = {0, 0};  // per lane
  double flops = 0;
  std::vector<BusyTime> busy_by_name;  // per (name, lane), in order of first appearance
  std::vector<double> start, finish;   // per operation
};

// Throws dsinfer::Error if an operation depends on itself or a later one, or has a negative time.
PipelineResult run_pipeline(const std::vector<PipelineOp>& ops);

// Convenience builder that returns each operation's index.
class PipelineBuilder {
 public:
  int add(std::string name, Lane lane, double seconds, double flops, std::vector<int> deps, int layer, int stage,
          int micro_batch);
  const std::vector<PipelineOp>& ops() const { return ops_; }

 private:
  std::vector<PipelineOp> ops_;
};

}  // namespace dsinfer::plan
