// EPLB, the expert-parallel load balancer: given each MoE layer's load per logical expert, decide
// how many replicas every expert gets and which physical slot (GPU by GPU, num_replicas/num_gpus
// slots per GPU) holds each, so that the most loaded GPU carries as little as possible. The default
// policy reproduces DeepSeek's published eplb.py exactly, tie-breaking and float32 arithmetic
// included: hierarchical when num_groups % num_nodes == 0 (expert groups packed onto nodes,
// replication and packing within each node, so replicas never leave their group's node), global
// otherwise (one group, one node). The refined policy keeps the same constraints, starts from the
// DeepSeek plan and lowers the most loaded GPU by local search over replica counts and placement;
// per layer it is never worse than the DeepSeek plan. Pure computation: no communication here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "parallel/eplb_load.h"

namespace dsinfer::parallel {

enum class EplbPolicy { kDeepSeek, kRefined };

// "deepseek" or "refined"; throws Error naming the choices otherwise.
EplbPolicy parse_eplb_policy(const std::string& name);
const char* to_string(EplbPolicy policy);

struct EplbShape {
  int num_replicas = 0;  // physical expert slots over all GPUs (logical experts + redundant ones)
  int num_groups = 1;    // expert groups of the router (n_group); experts of a group stay on one node
  int num_nodes = 1;     // nodes, where the intra-node network is the fast one
  int num_gpus = 1;      // GPUs over all nodes

  int slots_per_gpu() const { return num_replicas / num_gpus; }
  // DeepSeek's choice between its two policies.
  bool hierarchical() const { return num_groups % num_nodes == 0; }
};

// Throws Error with an actionable message when shape and load cannot be balanced: replicas not a
// multiple of GPUs, GPUs not a multiple of nodes, fewer replicas than experts, experts not
// divisible by groups in hierarchical mode, non-positive counts, invalid loads.
void validate_eplb_input(const ExpertLoad& load, const EplbShape& shape);

struct EplbPlan {
  int num_layers = 0;
  int num_logical = 0;
  int num_replicas = 0;
  int num_gpus = 0;
  int max_replicas = 0;  // most replicas of any expert in any layer: the last dim of log2phy
  bool hierarchical = false;
  std::vector<int32_t> phy2log;  // [num_layers][num_replicas]: logical expert in each physical slot
  std::vector<int32_t> log2phy;  // [num_layers][num_logical][max_replicas]: its slots, -1 padded
  std::vector<int32_t> logcnt;   // [num_layers][num_logical]: replicas of each logical expert

  int32_t phy_to_log(int layer, int slot) const { return phy2log[size_t(layer) * num_replicas + slot]; }
  int32_t log_to_phy(int layer, int expert, int rank) const {
    return log2phy[(size_t(layer) * num_logical + expert) * max_replicas + rank];
  }
  int32_t count(int layer, int expert) const { return logcnt[size_t(layer) * num_logical + expert]; }
};

EplbPlan rebalance(const ExpertLoad& load, const EplbShape& shape, EplbPolicy policy = EplbPolicy::kDeepSeek);

// The signature, for callers holding nested rows.
EplbPlan rebalance(const std::vector<std::vector<double>>& load, int num_replicas, int num_groups, int num_nodes,
                   int num_gpus, EplbPolicy policy = EplbPolicy::kDeepSeek);

// Load of every GPU in one layer when physical slot s holds logical expert phy2log[s] and the
// slots split evenly over the GPUs: each replica carries its expert's load (expert_load[e])
// divided by the expert's replica count.
std::vector<double> gpu_loads(const double* expert_load, int num_experts, const std::vector<int32_t>& phy2log,
                              int num_gpus);
// The same under a plan.
std::vector<double> gpu_loads(const ExpertLoad& load, const EplbPlan& plan, int layer);

// The same without balancing: one replica per expert, expert e in slot e, slots beyond the
// experts empty — what a deployment without EPLB runs.
std::vector<double> gpu_loads_unbalanced(const ExpertLoad& load, const EplbShape& shape, int layer);

// Most loaded GPU over the mean GPU load (1 when every GPU is idle): the slowdown the layer suffers
// against a perfect balance.
double max_over_mean(const std::vector<double>& gpu_loads);

// max_over_mean per layer, under the plan and unbalanced.
std::vector<double> plan_max_over_mean(const ExpertLoad& load, const EplbPlan& plan);
std::vector<double> unbalanced_max_over_mean(const ExpertLoad& load, const EplbShape& shape);

}  // namespace dsinfer::parallel
