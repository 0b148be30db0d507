// Expert-parallel communication cost: DeepEP's dispatch (FP8 for FP8 checkpoints) and combine
// (BF16), in its two modes. Times are bytes / bandwidth with bytes counted exactly the way
// DeepEP's published tables count them, so the tables apply unchanged:
//   normal, across nodes  once per (token, destination node), the token's own node included;
//   normal, within a node once per (token, destination GPU);
//   low-latency           once per (token, expert).
// Bandwidths are interpolated in log(EP size) between the published rows, clamped at the ends,
// and scaled by the profile's NIC (or NVLink) bandwidth over the reference hardware's.
#pragma once

#include <vector>

#include "model/config.h"
#include "plan/hardware.h"

namespace dsinfer::plan {

struct CommCost {
  double dispatch_seconds = 0;
  double combine_seconds = 0;
  double dispatch_bytes = 0;  // as DeepEP counts them, per GPU
  double combine_bytes = 0;
};

// Expected number of distinct nodes a token's top-k experts live on, over `nodes` nodes holding
// the experts evenly. With group-limited routing (n_group > 1, topk_group < n_group) whole groups
// sit on nodes, so a token reaches at most topk_group groups' nodes.
double expected_nodes_per_token(const model::ModelConfig& c, int nodes);
// Expected number of distinct GPUs among `ranks` that a token's top-k experts live on.
double expected_ranks_per_token(const model::ModelConfig& c, int ranks);

// Bandwidth from an ascending table at `ep` (log-linear between rows, clamped at the ends).
double interpolate_bandwidth(const std::vector<EpBandwidth>& table, int ep, bool dispatch);

// Bytes of one token's hidden state as dispatched / combined.
double dispatch_bytes_per_token(const model::ModelConfig& c);
double combine_bytes_per_token(const model::ModelConfig& c);

// `tokens` is what one GPU sends in one call; `ep_gpus` the expert-parallel group size.
CommCost normal_mode_cost(const model::ModelConfig& c, const HardwareProfile& hw, const DeepEpReference& ref,
                          int ep_gpus, double tokens);
CommCost low_latency_cost(const model::ModelConfig& c, const HardwareProfile& hw, const DeepEpReference& ref,
                          int ep_gpus, double tokens);

}  // namespace dsinfer::plan
