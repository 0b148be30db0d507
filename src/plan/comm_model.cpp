#include "plan/comm_model.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace dsinfer::plan {

namespace {

double uniform_distinct(double bins, double draws) {
  if (bins <= 1) return 1;
  return bins * (1 - std::pow(1 - 1 / bins, draws));
}

double choose(int n, int k) {
  if (k < 0 || k > n) return 0;
  double r = 1;
  for (int i = 1; i <= k; ++i) r = r * double(n - k + i) / double(i);
  return r;
}

bool group_limited(const model::ModelConfig& c) {
  return c.topk_method != model::TopkMethod::kGreedy && c.n_group > 1 && c.topk_group < c.n_group;
}

// Bins (nodes, or ranks within one) a token's top-k experts land in, experts spread evenly over
// the bins. With group-limited routing a token draws from its chosen groups only; otherwise its k
// distinct experts are drawn without replacement, so a bin is missed with probability
// C(E - E/bins, k) / C(E, k). (Drawing with replacement, as this file once did, overstated
// DeepEP's fan-out: 2.70 instead of the 2.74 measured at 4 ranks by bench/ep_bench, and 5.25
// GPUs instead of 4 for V3 inside a node, where each GPU holds one of the 8 groups.)
double expected_bins_touched(const model::ModelConfig& c, int bins) {
  if (bins <= 1) return 1;
  const double k = double(c.num_experts_per_tok);
  const int64_t experts = c.n_routed_experts;
  if (group_limited(c) && experts % c.n_group == 0) {
    // The token's k experts are drawn from the `chosen` groups' pool; a chosen group may still
    // contribute none of them.
    const int groups = int(c.n_group), chosen = int(c.topk_group), per_group = int(experts / groups);
    const int pool = chosen * per_group;
    auto none_of = [&](int held) { return choose(pool - held, int(k)) / choose(pool, int(k)); };
    if (groups % bins == 0) {
      // g whole groups per bin: j of them chosen (hypergeometric), then none of the k experts
      // among their j * per_group.
      const int g = groups / bins;
      double missed = 0;
      for (int j = 0; j <= std::min(g, chosen); ++j)
        missed += choose(g, j) * choose(groups - g, chosen - j) / choose(groups, chosen) * none_of(j * per_group);
      return bins * (1 - missed);
    }
    if (bins % groups == 0 && experts % bins == 0) {
      // Each bin holds part of one group: that group chosen, then one of the bin's experts drawn.
      const double chosen_share = double(chosen) / groups;
      return bins * chosen_share * (1 - none_of(int(experts / bins)));
    }
  }
  if (experts > 0 && experts % bins == 0 && c.num_experts_per_tok <= experts)
    return bins * (1 - choose(int(experts - experts / bins), int(k)) / choose(int(experts), int(k)));
  return uniform_distinct(bins, k);
}

}  // namespace

double expected_nodes_per_token(const model::ModelConfig& c, int nodes) { return expected_bins_touched(c, nodes); }

double expected_ranks_per_token(const model::ModelConfig& c, int ranks) { return expected_bins_touched(c, ranks); }

double interpolate_bandwidth(const std::vector<EpBandwidth>& table, int ep, bool dispatch) {
  check(!table.empty(), "DeepEP table is empty");
  auto pick = [&](const EpBandwidth& b) { return dispatch ? b.dispatch : b.combine; };
  if (ep <= table.front().ep) return pick(table.front());
  if (ep >= table.back().ep) return pick(table.back());
  for (size_t i = 1; i < table.size(); ++i) {
    if (ep > table[i].ep) continue;
    double f = std::log(double(ep) / table[i - 1].ep) / std::log(double(table[i].ep) / table[i - 1].ep);
    return pick(table[i - 1]) + f * (pick(table[i]) - pick(table[i - 1]));
  }
  return pick(table.back());
}

double dispatch_bytes_per_token(const model::ModelConfig& c) {
  double h = double(c.hidden_size);
  // FP8 values plus one float scale per 128 (DeepEP's FP8 dispatch); BF16 models send BF16.
  return c.quant ? h + h / 128 * 4 : 2 * h;
}

double combine_bytes_per_token(const model::ModelConfig& c) { return 2 * double(c.hidden_size); }

CommCost normal_mode_cost(const model::ModelConfig& c, const HardwareProfile& hw, const DeepEpReference& ref,
                          int ep_gpus, double tokens) {
  CommCost o;
  if (ep_gpus <= 1 || tokens <= 0) return o;
  if (ep_gpus <= hw.gpus_per_node) {
    double fanout = expected_ranks_per_token(c, ep_gpus);
    double scale = hw.nvlink_bandwidth / ref.reference_nvlink;
    o.dispatch_bytes = tokens * fanout * dispatch_bytes_per_token(c);
    o.combine_bytes = tokens * fanout * combine_bytes_per_token(c);
    o.dispatch_seconds = o.dispatch_bytes / (ref.normal_intranode.dispatch * scale);
    o.combine_seconds = o.combine_bytes / (ref.normal_intranode.combine * scale);
    return o;
  }
  int nodes = (ep_gpus + hw.gpus_per_node - 1) / hw.gpus_per_node;
  double fanout = expected_nodes_per_token(c, nodes);
  double scale = hw.nic_bandwidth / ref.reference_nic;
  o.dispatch_bytes = tokens * fanout * dispatch_bytes_per_token(c);
  o.combine_bytes = tokens * fanout * combine_bytes_per_token(c);
  o.dispatch_seconds = o.dispatch_bytes / (interpolate_bandwidth(ref.normal_internode, ep_gpus, true) * scale);
  o.combine_seconds = o.combine_bytes / (interpolate_bandwidth(ref.normal_internode, ep_gpus, false) * scale);
  return o;
}

CommCost low_latency_cost(const model::ModelConfig& c, const HardwareProfile& hw, const DeepEpReference& ref,
                          int ep_gpus, double tokens) {
  CommCost o;
  if (ep_gpus <= 1 || tokens <= 0) return o;
  double scale = hw.nic_bandwidth / ref.reference_nic;
  double pairs = tokens * double(c.num_experts_per_tok);
  o.dispatch_bytes = pairs * dispatch_bytes_per_token(c);
  o.combine_bytes = pairs * combine_bytes_per_token(c);
  o.dispatch_seconds = o.dispatch_bytes / (interpolate_bandwidth(ref.low_latency, ep_gpus, true) * scale);
  o.combine_seconds = o.combine_bytes / (interpolate_bandwidth(ref.low_latency, ep_gpus, false) * scale);
  return o;
}

}  // namespace dsinfer::plan
