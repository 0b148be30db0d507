// `dsinfer eplb`: plans redundant experts and their placement from a recorded expert load, with
// DeepSeek's EPLB policy or the refined one, and prints a per-GPU table or the plan as JSON.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "parallel/eplb.h"

namespace dsinfer::app {

namespace {

using parallel::EplbPlan;
using parallel::EplbShape;
using parallel::ExpertLoad;

int positive_int(Args& args, const std::string& name) {
  std::string text = args.require(name);
  int64_t v = args.get_int(name, 0);
  check(v > 0 && v <= std::numeric_limits<int>::max(), "--", name, " must be a positive integer, got '", text, "'");
  return int(v);
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

void print_json(const EplbShape& shape, const EplbPlan& plan, parallel::EplbPolicy policy,
                const std::vector<double>& before, const std::vector<double>& after) {
  using nlohmann::json;
  json phy2log = json::array(), log2phy = json::array(), logcnt = json::array();
  for (int l = 0; l < plan.num_layers; ++l) {
    phy2log.push_back(std::vector<int32_t>(plan.phy2log.begin() + size_t(l) * plan.num_replicas,
                                           plan.phy2log.begin() + size_t(l + 1) * plan.num_replicas));
    logcnt.push_back(std::vector<int32_t>(plan.logcnt.begin() + size_t(l) * plan.num_logical,
                                          plan.logcnt.begin() + size_t(l + 1) * plan.num_logical));
    json layer = json::array();
    for (int e = 0; e < plan.num_logical; ++e) {
      std::vector<int32_t> slots;
      for (int r = 0; r < plan.max_replicas; ++r) slots.push_back(plan.log_to_phy(l, e, r));
      layer.push_back(slots);
    }
    log2phy.push_back(layer);
  }
  // gpus and nodes: the shape it was planned for. `--eplb-placement` refuses a plan made for a
  // different number of ranks, whose slots might still split evenly but whose balance would not hold.
  json out = {{"policy", parallel::to_string(policy)},
              {"mode", plan.hierarchical ? "hierarchical" : "global"},
              {"gpus", shape.num_gpus},
              {"nodes", shape.num_nodes},
              {"phy2log", phy2log},
              {"log2phy", log2phy},
              {"logcnt", logcnt},
              {"max_over_mean", after},
              {"max_over_mean_before", before}};
  std::printf("%s\n", out.dump().c_str());
}

// Experts of one GPU as "5 6/2": expert 6 holds half its load here (one of 2 replicas).
std::string gpu_experts(const EplbPlan& plan, int layer, int gpu) {
  const int per_gpu = plan.num_replicas / plan.num_gpus;
  std::ostringstream out;
  for (int k = 0; k < per_gpu; ++k) {
    int e = plan.phy_to_log(layer, gpu * per_gpu + k);
    int c = plan.count(layer, e);
    out << (k ? " " : "") << e;
    if (c > 1) out << '/' << c;
  }
  return out.str();
}

void print_table(const ExpertLoad& load, const EplbShape& shape, const EplbPlan& plan, parallel::EplbPolicy policy,
                 const std::vector<double>& before, const std::vector<double>& after) {
  std::printf("EPLB %s policy, %s mode: %d layers x %d experts -> %d slots on %d GPUs (%d nodes, %d slots/GPU%s)\n",
              parallel::to_string(policy), plan.hierarchical ? "hierarchical" : "global", load.num_layers,
              load.num_experts, shape.num_replicas, shape.num_gpus, shape.num_nodes, shape.slots_per_gpu(),
              plan.hierarchical ? str(", ", shape.num_groups, " groups").c_str() : "");
  std::printf("'before' places one replica of each expert in slot order; 'e/c' is one of expert e's c replicas.\n");
  const int gpus_per_node = shape.num_gpus / shape.num_nodes;
  for (int l = 0; l < load.num_layers; ++l) {
    std::printf("\nlayer %d: max/mean %.3f before -> %.3f after\n", l, before[l], after[l]);
    std::vector<double> now = parallel::gpu_loads(load, plan, l);
    std::vector<double> was = parallel::gpu_loads_unbalanced(load, shape, l);
    std::printf("  %5s %5s %12s %12s  %s\n", "gpu", "node", "load", "before", "experts");
    for (int g = 0; g < shape.num_gpus; ++g)
      std::printf("  %5d %5d %12.1f %12.1f  %s\n", g, g / gpus_per_node, now[g], was[g],
                  gpu_experts(plan, l, g).c_str());
  }
  std::printf("\nall layers: max/mean before %.3f (worst %.3f), after %.3f (worst %.3f)\n", mean_of(before),
              *std::max_element(before.begin(), before.end()), mean_of(after),
              *std::max_element(after.begin(), after.end()));
}

int run_eplb(Args& args) {
  std::string path = args.require("load");
  EplbShape shape;
  shape.num_replicas = positive_int(args, "replicas");
  shape.num_groups = positive_int(args, "groups");
  shape.num_nodes = positive_int(args, "nodes");
  shape.num_gpus = positive_int(args, "gpus");
  parallel::EplbPolicy policy = parallel::parse_eplb_policy(args.get_or("policy", "deepseek"));
  bool json = args.flag("json");
  args.finish();

  ExpertLoad load = parallel::read_expert_load_file(path);
  EplbPlan plan = parallel::rebalance(load, shape, policy);
  std::vector<double> before = parallel::unbalanced_max_over_mean(load, shape);
  std::vector<double> after = parallel::plan_max_over_mean(load, plan);
  if (json)
    print_json(shape, plan, policy, before, after);
  else
    print_table(load, shape, plan, policy, before, after);
  return 0;
}

const Registration kRegistration({
    "eplb",
    "plan redundant experts and their GPU placement from recorded expert loads (EPLB)",
    "--load FILE.json --replicas R --groups G --nodes N --gpus P [--policy deepseek|refined] [--json]\n\n"
    "  --load FILE.json  expert loads: a JSON array of arrays, load[layer][expert] (e.g. from\n"
    "                    dsinfer generate --dump-expert-load)\n"
    "  --replicas R      physical expert slots over all GPUs (experts + redundant ones), a multiple of P\n"
    "  --groups G        expert groups of the model (n_group); hierarchical policy when G % N == 0\n"
    "  --nodes N         nodes; P must be a multiple of N\n"
    "  --gpus P          GPUs in total\n"
    "  --policy NAME     deepseek (default: identical to DeepSeek's eplb.py) or refined (lower peak load)\n"
    "  --json            print phy2log, log2phy, logcnt, max_over_mean and the shape (gpus, nodes) as JSON\n"
    "                    instead of a table; `mpirun -np P dsinfer ... --eplb-placement FILE` reads it",
    run_eplb,
});

}  // namespace

}  // namespace dsinfer::app
