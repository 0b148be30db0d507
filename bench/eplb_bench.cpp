// EPLB benchmark: how long one rebalance takes for DeepSeek-V3's shape (61 MoE layers x 256 experts,
// 288 slots) on its prefill deployment (32 GPUs on 4 nodes: hierarchical policy) and its decode
// deployment (144 GPUs on 18 nodes: global policy), for both policies — it must be far below a
// second to run online — and the imbalance (most loaded GPU over the mean) before balancing and
// after each policy.
//
// Loads: `--load FILE.json` (the `dsinfer eplb --load` format, e.g. from `dsinfer generate
// --dump-expert-load`) or, without it, synthetic skewed loads: per layer, 8 distinct routed experts
// for each of --tokens tokens drawn from a Zipf-like popularity 1/rank^s over a random ordering of
// the experts, for each exponent s of --zipf (a comma list). Flags: --smoke (CI), --reps N,
// --zipf S[,S...], --tokens T, --seed N, --json.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <queue>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/timer.h"
#include "machine_limits.h"
#include "parallel/eplb.h"

namespace {

using namespace dsinfer;
using namespace dsinfer::parallel;

struct Options {
  bool smoke = false, json = false;
  int reps = 21;
  std::vector<double> zipf = {0.3, 0.6, 0.9};
  long tokens = 16384;
  unsigned seed = 1;
  std::string load_file;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      check(i + 1 < argc, "eplb_bench: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--smoke") o.smoke = true;
    else if (a == "--json") o.json = true;
    else if (a == "--reps") o.reps = std::max(1, std::atoi(value().c_str()));
    else if (a == "--zipf") {
      o.zipf.clear();
      std::string list = value();
      for (size_t pos = 0; pos <= list.size();) {
        size_t comma = std::min(list.find(',', pos), list.size());
        o.zipf.push_back(std::atof(list.substr(pos, comma - pos).c_str()));
        pos = comma + 1;
      }
    }
    else if (a == "--tokens") o.tokens = std::max(1L, std::atol(value().c_str()));
    else if (a == "--seed") o.seed = unsigned(std::atol(value().c_str()));
    else if (a == "--load") o.load_file = value();
    else fail("eplb_bench: unknown flag ", a, " (flags: --smoke --json --reps N --zipf S --tokens T --seed N --load FILE)");
  }
  if (o.smoke) o.reps = 3;
  return o;
}

// Each token picks top_k distinct experts, weighted by a Zipf-like popularity whose order is
// shuffled per layer (hot experts differ between layers, as in real routing).
ExpertLoad synthetic_load(int layers, int experts, int top_k, long tokens, double s, unsigned seed) {
  std::mt19937_64 rng(seed);
  ExpertLoad load(layers, experts);
  std::vector<double> pop(experts);
  std::vector<int> order(experts);
  for (int l = 0; l < layers; ++l) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (int r = 0; r < experts; ++r) pop[order[r]] = 1.0 / std::pow(r + 1.0, s);
    std::discrete_distribution<int> pick(pop.begin(), pop.end());
    for (long t = 0; t < tokens; ++t) {
      int chosen[64], n = 0;
      while (n < top_k) {
        int e = pick(rng);
        if (std::find(chosen, chosen + n, e) == chosen + n) chosen[n++] = e;
      }
      for (int k = 0; k < n; ++k) load.at(l, chosen[k]) += 1;
    }
  }
  return load;
}

// A lower bound on max/mean for any placement: no GPU can carry less than the mean, and the GPU
// holding the heaviest replica carries at least that replica, which is heaviest at best when
// redundant slots go, one at a time, to the highest load per replica (water-filling is optimal).
std::vector<double> lower_bound_max_over_mean(const ExpertLoad& load, const EplbShape& shape) {
  std::vector<double> out(load.num_layers);
  for (int l = 0; l < load.num_layers; ++l) {
    std::priority_queue<std::pair<double, int>> heaviest;  // (load per replica, expert)
    std::vector<int> count(load.num_experts, 1);
    double total = 0;
    for (int e = 0; e < load.num_experts; ++e) heaviest.push({load.at(l, e), e}), total += load.at(l, e);
    for (int r = load.num_experts; r < shape.num_replicas; ++r) {
      int e = heaviest.top().second;
      heaviest.pop();
      heaviest.push({load.at(l, e) / ++count[e], e});
    }
    double mean = total / shape.num_gpus;
    out[l] = mean > 0 ? std::max(1.0, heaviest.top().first / mean) : 1.0;
  }
  return out;
}

struct Stats {
  double mean = 0, worst = 0;
};

Stats summarize(const std::vector<double>& v) {
  Stats s;
  for (double x : v) s.mean += x, s.worst = std::max(s.worst, x);
  s.mean /= double(v.size());
  return s;
}

struct Deployment {
  std::string name;
  int gpus, nodes, replicas;
};

// DeepSeek's two deployments for 256 experts — prefill on 32 GPUs (4 nodes, 9 slots each) and
// decode on 144 GPUs (18 nodes, 2 slots each), 288 slots — scaled to other expert counts keeping
// the slots per GPU and one eighth of redundant slots: 64 experts get 72 slots on 8 and 36 GPUs.
std::vector<Deployment> deployments_for(int experts) {
  const int prefill_gpus = std::max(1, (experts + 7) / 8), decode_gpus = std::max(1, (experts * 9 + 15) / 16);
  const int prefill_nodes = prefill_gpus % 4 == 0 ? 4 : 1, decode_nodes = decode_gpus % 18 == 0 ? 18 : 1;
  return {{str("prefill EP", prefill_gpus), prefill_gpus, prefill_nodes, 9 * prefill_gpus},
          {str("decode EP", decode_gpus), decode_gpus, decode_nodes, 2 * decode_gpus}};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse(argc, argv);
    std::vector<std::pair<std::string, ExpertLoad>> loads;
    if (!o.load_file.empty()) {
      loads.push_back({"recorded loads from " + o.load_file, read_expert_load_file(o.load_file)});
    } else {
      const int layers = o.smoke ? 8 : 61;
      const long tokens = o.smoke ? 2048 : o.tokens;
      for (double s : o.zipf)
        loads.push_back({str("synthetic Zipf-like loads, s=", s, " (", tokens, " tokens x top-8 per layer, seed ", o.seed,
                             ")"),
                         synthetic_load(layers, 256, 8, tokens, s, o.seed)});
    }
    nlohmann::json json_rows = nlohmann::json::array();
    for (const auto& [source, load] : loads) {
      const int experts = load.num_experts;
      const int groups = experts % 8 == 0 ? 8 : 1;
      if (!o.json)
        std::printf("\nEPLB: %d layers x %d experts, %d groups; %s; median of %d reps\n", load.num_layers, experts,
                    groups, source.c_str(), o.reps);
      for (const Deployment& d : deployments_for(experts)) {
        const int replicas = d.replicas;
        EplbShape shape{replicas, groups, d.nodes, d.gpus};
        Stats before = summarize(unbalanced_max_over_mean(load, shape));
        Stats bound = summarize(lower_bound_max_over_mean(load, shape));
        if (!o.json)
          std::printf("  %s: %d slots on %d GPUs (%d nodes, %d slots/GPU), %s policy\n"
                      "    before (no EPLB)                      max/mean %.3f (worst layer %.3f)\n"
                      "    lower bound (mean, heaviest replica)  max/mean %.3f (worst layer %.3f)\n",
                      d.name.c_str(), replicas, d.gpus, d.nodes, shape.slots_per_gpu(),
                      shape.hierarchical() ? "hierarchical" : "global", before.mean, before.worst, bound.mean,
                      bound.worst);
        for (EplbPolicy policy : {EplbPolicy::kDeepSeek, EplbPolicy::kRefined}) {
          std::vector<double> times;
          EplbPlan plan;
          for (int r = 0; r < o.reps; ++r) {
            double t0 = now_seconds();
            plan = rebalance(load, shape, policy);
            times.push_back(now_seconds() - t0);
          }
          double ms = bench::median(times) * 1e3;
          Stats after = summarize(plan_max_over_mean(load, plan));
          if (!o.json)
            std::printf("    %-9s rebalance %7.2f ms            max/mean %.3f (worst layer %.3f)\n", to_string(policy), ms,
                        after.mean, after.worst);
          json_rows.push_back({{"load", source},
                               {"deployment", d.name},
                               {"gpus", d.gpus},
                               {"nodes", d.nodes},
                               {"replicas", replicas},
                               {"policy", to_string(policy)},
                               {"rebalance_ms", ms},
                               {"max_over_mean_before", before.mean},
                               {"max_over_mean_lower_bound", bound.mean},
                               {"max_over_mean_after", after.mean},
                               {"worst_layer_after", after.worst}});
        }
      }
    }
    if (o.json) std::printf("%s\n", json_rows.dump(2).c_str());
    return 0;
  } catch (const dsinfer::Error& e) {
    std::fprintf(stderr, "eplb_bench: error: %s\n", e.what());
    return 1;
  }
}
