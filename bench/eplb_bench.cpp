// EPLB benchmark: how long one rebalance takes for DeepSeek-V3's shape (61 MoE layers x 256 experts,
// 288 slots) on its prefill deployment (32 GPUs on 4 nodes: hierarchical policy) and its decode
// deployment (144 GPUs on 18 nodes: global policy), for both policies — it must be far below a
// second to run online — and the imbalance (most loaded GPU over the mean) before balancing and
// after each policy.
//
// Loads: `--load FILE.json` (the `dsinfer eplb --load` format, e.g. from `dsinfer generate
// --dump-expert-load`) or, without it, synthetic skewed loads: per layer, 8 routed experts for each
// of --tokens tokens drawn from a Zipf-like popularity (exponent --zipf) over a random ordering of
// the experts. Flags: --smoke (CI), --reps N, --zipf S, --tokens T, --seed N, --json.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

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
  double zipf = 0.8;
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
    else if (a == "--zipf") o.zipf = std::atof(value().c_str());
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
  const char* name;
  int gpus, nodes;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse(argc, argv);
    ExpertLoad load;
    std::string source;
    if (!o.load_file.empty()) {
      load = read_expert_load_file(o.load_file);
      source = "recorded loads from " + o.load_file;
    } else {
      const int layers = o.smoke ? 8 : 61;
      load = synthetic_load(layers, 256, 8, o.smoke ? 2048 : o.tokens, o.zipf, o.seed);
      source = str("synthetic Zipf-like loads (s=", o.zipf, ", ", o.smoke ? 2048 : o.tokens,
                   " tokens x top-8 per layer, seed ", o.seed, ")");
    }
    const int experts = load.num_experts;
    const int groups = experts % 8 == 0 ? 8 : 1;
    const Deployment deployments[] = {{"prefill EP32", 32, 4}, {"decode EP144", 144, 18}};

    if (!o.json)
      std::printf("EPLB: %d layers x %d experts, %d groups; %s; median of %d reps\n", load.num_layers, experts, groups,
                  source.c_str(), o.reps);
    std::string json_rows;
    for (const Deployment& d : deployments) {
      // DeepSeek's 32 redundant slots on 256 experts, i.e. one eighth more, rounded to whole GPUs.
      int replicas = (experts + experts / 8 + d.gpus - 1) / d.gpus * d.gpus;
      EplbShape shape{replicas, groups, d.nodes, d.gpus};
      Stats before = summarize(unbalanced_max_over_mean(load, shape));
      if (!o.json)
        std::printf("\n%s: %d slots on %d GPUs (%d nodes, %d slots/GPU), %s policy\n"
                    "  before (no EPLB)  max/mean %.3f (worst layer %.3f)\n",
                    d.name, replicas, d.gpus, d.nodes, shape.slots_per_gpu(),
                    shape.hierarchical() ? "hierarchical" : "global", before.mean, before.worst);
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
          std::printf("  %-9s rebalance %8.2f ms   max/mean %.3f (worst layer %.3f)\n", to_string(policy), ms,
                      after.mean, after.worst);
        json_rows += str(json_rows.empty() ? "" : ",\n  ", "{\"deployment\": \"", d.name, "\", \"gpus\": ", d.gpus,
                         ", \"nodes\": ", d.nodes, ", \"replicas\": ", replicas, ", \"policy\": \"", to_string(policy),
                         "\", \"rebalance_ms\": ", ms, ", \"max_over_mean_before\": ", before.mean,
                         ", \"max_over_mean_after\": ", after.mean, ", \"worst_layer_after\": ", after.worst, "}");
      }
    }
    if (o.json) std::printf("[\n  %s\n]\n", json_rows.c_str());
    return 0;
  } catch (const dsinfer::Error& e) {
    std::fprintf(stderr, "eplb_bench: error: %s\n", e.what());
    return 1;
  }
}
