#include "parallel/eplb.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <utility>

#include "base/error.h"
#include "parallel/eplb_refined.h"

namespace dsinfer::parallel {

namespace {

// The slot count and the size of log2phy are bounded so that a typo in a flag (--replicas 2880000)
// is an error rather than an out-of-memory.
constexpr int kMaxReplicas = 1 << 16;
constexpr size_t kMaxLog2PhyEntries = size_t(1) << 28;

// ---------------------------------------------------------------------------------------------
// DeepSeek's policy. Every step below mirrors eplb.py on CPU: loads are float32 (weight.float()),
// sums and divisions are float32, and ties break exactly as there:
//  - sort(descending=True) is ATen's CPU sort, std::sort over (key, index) pairs with a
//    "key greater" comparator, starting from indices 0..n-1. std::sort is not stable (beyond 16
//    items it is introsort), so tied items come out in std::sort's own order, which we reproduce
//    by making the same call with the same standard library, libstdc++ (a test pins the order
//    against torch's output).
//  - the lightest pack is Python's min(): the first pack, in index order, with the least weight
//    among those with room.
//  - replication picks torch's max(dim=-1).indices: the first expert with the highest load per
//    replica.
// ---------------------------------------------------------------------------------------------

struct KeyIndex {
  float key;
  int32_t index;
};

std::vector<int32_t> sort_descending_like_torch(const float* w, int n) {
  std::vector<KeyIndex> items(n);
  for (int i = 0; i < n; ++i) items[i] = {w[i], i};
  std::sort(items.begin(), items.end(), [](const KeyIndex& a, const KeyIndex& b) { return a.key > b.key; });
  std::vector<int32_t> order(n);
  for (int i = 0; i < n; ++i) order[i] = items[i].index;
  return order;
}

// Packs n items into num_packs packs of n / num_packs items each: heaviest first, each into the
// lightest pack that still has room. pack[i], rank[i]: item i's pack and position in it.
void balanced_packing(const float* w, int n, int num_packs, int32_t* pack, int32_t* rank) {
  const int per_pack = n / num_packs;
  if (per_pack == 1) {  // eplb.py's shortcut: item i -> pack i, whatever the weights
    for (int i = 0; i < n; ++i) pack[i] = i, rank[i] = 0;
    return;
  }
  // The lightest pack with room, lowest index among equals: a min-heap on (weight, index) from
  // which full packs are dropped picks exactly what a scan over the packs would.
  using Pack = std::pair<float, int32_t>;
  std::vector<Pack> heap;
  heap.reserve(num_packs);
  for (int p = 0; p < num_packs; ++p) heap.push_back({0.0f, p});  // already a min-heap
  std::vector<int> pack_items(num_packs, 0);
  for (int32_t item : sort_descending_like_torch(w, n)) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    auto& [weight, best] = heap.back();
    pack[item] = best;
    rank[item] = pack_items[best]++;
    weight += w[item];
    if (pack_items[best] < per_pack)
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    else
      heap.pop_back();
  }
}

// Replicates n experts into num_phy replicas: slot i < n holds expert i; each further slot goes to
// the expert with the highest load per replica. phy2log, phyrank: [num_phy]; count: [n].
void replicate_experts(const float* w, int n, int num_phy, int32_t* phy2log, int32_t* phyrank, int32_t* count) {
  for (int i = 0; i < n; ++i) phy2log[i] = i, phyrank[i] = 0, count[i] = 1;
  // The highest load per replica, lowest index among equals: a max-heap on (load, -index) pops
  // exactly what torch.max's first maximum picks.
  using Expert = std::pair<float, int32_t>;  // (load per replica, -index)
  std::vector<Expert> heap;
  heap.reserve(n);
  for (int e = 0; e < n; ++e) heap.push_back({w[e], -e});
  std::make_heap(heap.begin(), heap.end());
  for (int i = n; i < num_phy; ++i) {
    std::pop_heap(heap.begin(), heap.end());
    const int best = -heap.back().second;
    phy2log[i] = best;
    phyrank[i] = count[best]++;
    heap.back().first = w[best] / float(count[best]);
    std::push_heap(heap.begin(), heap.end());
  }
}

// One layer's placement: phy2log and the replica rank of every slot (ranks in replication order,
// as eplb.py), plus node_experts (eplb.py's mlog2log): node n's experts at [n*E/N, (n+1)*E/N).
struct LayerPlacement {
  std::vector<int32_t> phy2log, phyrank, node_experts;
};

LayerPlacement deepseek_layer(const double* load, int num_experts, const EplbShape& shape) {
  const bool hier = shape.hierarchical();
  const int groups = hier ? shape.num_groups : 1;
  const int nodes = hier ? shape.num_nodes : 1;
  const int group_size = num_experts / groups;
  const int groups_per_node = groups / nodes;
  const int experts_per_node = num_experts / nodes;
  const int slots_per_node = shape.num_replicas / nodes;
  const int gpus_per_node = shape.num_gpus / nodes;
  const int slots_per_gpu = shape.slots_per_gpu();

  std::vector<float> w(num_experts);
  for (int e = 0; e < num_experts; ++e) w[e] = float(load[e]);

  // Step 1: pack expert groups onto nodes by their summed load.
  std::vector<float> group_load(groups, 0.0f);
  for (int g = 0; g < groups; ++g)
    for (int k = 0; k < group_size; ++k) group_load[g] += w[g * group_size + k];
  std::vector<int32_t> group_pack(groups), group_rank(groups);
  balanced_packing(group_load.data(), groups, nodes, group_pack.data(), group_rank.data());
  LayerPlacement out;
  out.node_experts.resize(num_experts);
  for (int g = 0; g < groups; ++g)
    for (int k = 0; k < group_size; ++k)
      out.node_experts[(group_pack[g] * groups_per_node + group_rank[g]) * group_size + k] = g * group_size + k;

  out.phy2log.resize(shape.num_replicas);
  out.phyrank.resize(shape.num_replicas);
  std::vector<float> node_w(experts_per_node), replica_w(slots_per_node);
  std::vector<int32_t> phy2mlog(slots_per_node), phyrank(slots_per_node), count(experts_per_node);
  std::vector<int32_t> pack(slots_per_node), rank(slots_per_node);
  for (int n = 0; n < nodes; ++n) {
    const int32_t* experts = out.node_experts.data() + size_t(n) * experts_per_node;
    for (int j = 0; j < experts_per_node; ++j) node_w[j] = w[experts[j]];
    // Step 2: replicate within the node.
    replicate_experts(node_w.data(), experts_per_node, slots_per_node, phy2mlog.data(), phyrank.data(), count.data());
    // Step 3: pack the node's replicas onto its GPUs.
    for (int i = 0; i < slots_per_node; ++i) replica_w[i] = node_w[phy2mlog[i]] / float(count[phy2mlog[i]]);
    balanced_packing(replica_w.data(), slots_per_node, gpus_per_node, pack.data(), rank.data());
    for (int i = 0; i < slots_per_node; ++i) {
      int slot = n * slots_per_node + pack[i] * slots_per_gpu + rank[i];
      out.phy2log[slot] = experts[phy2mlog[i]];
      out.phyrank[slot] = phyrank[i];
    }
  }
  return out;
}

// Refined policy: the DeepSeek placement improved node by node; node membership is kept, so
// replicas stay with their group's node in hierarchical mode.
void refine_layer(const double* load, const EplbShape& shape, LayerPlacement& p) {
  const int nodes = shape.hierarchical() ? shape.num_nodes : 1;
  const int num_experts = int(p.node_experts.size());
  const int experts_per_node = num_experts / nodes;
  const int slots_per_node = shape.num_replicas / nodes;
  std::vector<int32_t> local_of(num_experts);
  std::vector<double> node_load(experts_per_node);
  std::vector<int32_t> slot_expert(slots_per_node);
  for (int n = 0; n < nodes; ++n) {
    const int32_t* experts = p.node_experts.data() + size_t(n) * experts_per_node;
    for (int j = 0; j < experts_per_node; ++j) local_of[experts[j]] = j, node_load[j] = load[experts[j]];
    for (int s = 0; s < slots_per_node; ++s) slot_expert[s] = local_of[p.phy2log[n * slots_per_node + s]];
    detail::refine_node_placement(node_load, shape.num_gpus / nodes, slot_expert);
    for (int s = 0; s < slots_per_node; ++s) p.phy2log[n * slots_per_node + s] = experts[slot_expert[s]];
  }
  // Replica ranks follow slot order.
  std::vector<int32_t> seen(num_experts, 0);
  for (int s = 0; s < shape.num_replicas; ++s) p.phyrank[s] = seen[p.phy2log[s]]++;
}

}  // namespace

EplbPolicy parse_eplb_policy(const std::string& name) {
  if (name == "deepseek") return EplbPolicy::kDeepSeek;
  if (name == "refined") return EplbPolicy::kRefined;
  fail("unknown EPLB policy '", name, "' (choose deepseek or refined)");
}

const char* to_string(EplbPolicy policy) { return policy == EplbPolicy::kDeepSeek ? "deepseek" : "refined"; }

void validate_eplb_input(const ExpertLoad& load, const EplbShape& s) {
  validate_expert_load(load);
  check(s.num_replicas > 0, "replicas must be positive, got ", s.num_replicas);
  check(s.num_groups > 0, "groups must be positive, got ", s.num_groups);
  check(s.num_nodes > 0, "nodes must be positive, got ", s.num_nodes);
  check(s.num_gpus > 0, "gpus must be positive, got ", s.num_gpus);
  check(s.num_replicas <= kMaxReplicas, "replicas = ", s.num_replicas, " is more than this planner supports (",
        kMaxReplicas, ")");
  check(s.num_replicas % s.num_gpus == 0, "replicas (", s.num_replicas, ") must be a multiple of gpus (", s.num_gpus,
        ") so every GPU gets the same number of slots");
  check(s.num_gpus % s.num_nodes == 0, "gpus (", s.num_gpus, ") must be a multiple of nodes (", s.num_nodes,
        ") so every node has the same number of GPUs");
  check(s.num_replicas >= load.num_experts, "replicas (", s.num_replicas, ") must be at least the number of experts (",
        load.num_experts, "): every expert needs a slot");
  if (s.hierarchical())
    check(load.num_experts % s.num_groups == 0, "experts (", load.num_experts, ") must be divisible by groups (",
          s.num_groups, ") in hierarchical mode (groups % nodes == 0); pass the model's n_group");
}

EplbPlan rebalance(const ExpertLoad& load, const EplbShape& shape, EplbPolicy policy) {
  validate_eplb_input(load, shape);
  const int layers = load.num_layers, experts = load.num_experts, replicas = shape.num_replicas;
  EplbPlan plan;
  plan.num_layers = layers;
  plan.num_logical = experts;
  plan.num_replicas = replicas;
  plan.num_gpus = shape.num_gpus;
  plan.hierarchical = shape.hierarchical();
  plan.phy2log.resize(size_t(layers) * replicas);
  std::vector<int32_t> phyrank(size_t(layers) * replicas);
  for (int l = 0; l < layers; ++l) {
    LayerPlacement p = deepseek_layer(load.row(l), experts, shape);
    if (policy == EplbPolicy::kRefined) {
      LayerPlacement refined = p;
      refine_layer(load.row(l), shape, refined);
      // The search never raises the most loaded GPU; this guard makes "never worse than DeepSeek"
      // hold even against rounding in its incremental sums.
      const std::vector<double> row(load.row(l), load.row(l) + experts);
      if (detail::placement_max_load(row, shape.num_gpus, refined.phy2log) <=
          detail::placement_max_load(row, shape.num_gpus, p.phy2log))
        p = std::move(refined);
    }
    std::copy(p.phy2log.begin(), p.phy2log.end(), plan.phy2log.begin() + size_t(l) * replicas);
    std::copy(p.phyrank.begin(), p.phyrank.end(), phyrank.begin() + size_t(l) * replicas);
  }

  plan.logcnt.assign(size_t(layers) * experts, 0);
  for (int l = 0; l < layers; ++l)
    for (int s = 0; s < replicas; ++s) plan.logcnt[size_t(l) * experts + plan.phy_to_log(l, s)]++;
  plan.max_replicas = *std::max_element(plan.logcnt.begin(), plan.logcnt.end());
  check(size_t(layers) * experts * plan.max_replicas <= kMaxLog2PhyEntries, "the plan's log2phy table (", layers,
        " x ", experts, " x ", plan.max_replicas, ") is too large; use fewer replicas");
  plan.log2phy.assign(size_t(layers) * experts * plan.max_replicas, -1);
  for (int l = 0; l < layers; ++l)
    for (int s = 0; s < replicas; ++s) {
      size_t i = size_t(l) * replicas + s;
      plan.log2phy[(size_t(l) * experts + plan.phy2log[i]) * plan.max_replicas + phyrank[i]] = s;
    }
  return plan;
}

EplbPlan rebalance(const std::vector<std::vector<double>>& load, int num_replicas, int num_groups, int num_nodes,
                   int num_gpus, EplbPolicy policy) {
  EplbShape shape{num_replicas, num_groups, num_nodes, num_gpus};
  return rebalance(make_expert_load(load), shape, policy);
}

std::vector<double> gpu_loads(const double* expert_load, int num_experts, const std::vector<int32_t>& phy2log,
                              int num_gpus) {
  std::vector<int> replicas(static_cast<size_t>(num_experts), 0);
  for (int32_t e : phy2log) ++replicas[size_t(e)];
  std::vector<double> out(static_cast<size_t>(num_gpus), 0.0);
  const size_t per_gpu = phy2log.size() / size_t(num_gpus);
  for (size_t s = 0; s < phy2log.size(); ++s) out[s / per_gpu] += expert_load[phy2log[s]] / replicas[size_t(phy2log[s])];
  return out;
}

std::vector<double> gpu_loads(const ExpertLoad& load, const EplbPlan& plan, int layer) {
  const std::vector<int32_t> row(plan.phy2log.begin() + int64_t(layer) * plan.num_replicas,
                                 plan.phy2log.begin() + int64_t(layer + 1) * plan.num_replicas);
  return gpu_loads(load.row(layer), load.num_experts, row, plan.num_gpus);
}

std::vector<double> gpu_loads_unbalanced(const ExpertLoad& load, const EplbShape& shape, int layer) {
  std::vector<double> out(shape.num_gpus, 0.0);
  const int per_gpu = shape.slots_per_gpu();
  for (int e = 0; e < load.num_experts && e < shape.num_replicas; ++e) out[e / per_gpu] += load.at(layer, e);
  return out;
}

double max_over_mean(const std::vector<double>& loads) {
  if (loads.empty()) return 1.0;
  double total = std::accumulate(loads.begin(), loads.end(), 0.0);
  if (total <= 0) return 1.0;
  return *std::max_element(loads.begin(), loads.end()) / (total / double(loads.size()));
}

std::vector<double> plan_max_over_mean(const ExpertLoad& load, const EplbPlan& plan) {
  std::vector<double> out(plan.num_layers);
  for (int l = 0; l < plan.num_layers; ++l) out[l] = max_over_mean(gpu_loads(load, plan, l));
  return out;
}

std::vector<double> unbalanced_max_over_mean(const ExpertLoad& load, const EplbShape& shape) {
  validate_eplb_input(load, shape);
  std::vector<double> out(load.num_layers);
  for (int l = 0; l < load.num_layers; ++l) out[l] = max_over_mean(gpu_loads_unbalanced(load, shape, l));
  return out;
}

}  // namespace dsinfer::parallel
