// The refined policy: never worse than DeepSeek's on any layer, optimal on small cases whose
// optimum is known by hand, and clearly better on DeepSeek's decode shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "parallel/eplb.h"

namespace dsinfer::parallel {
namespace {

double peak(const ExpertLoad& load, const EplbPlan& plan, int layer) {
  std::vector<double> g = gpu_loads(load, plan, layer);
  return *std::max_element(g.begin(), g.end());
}

// Per layer: experts' popularity falls off as 1/rank^s over a random order; counts are drawn.
ExpertLoad skewed_load(int layers, int experts, double s, int tokens, std::mt19937_64& rng) {
  ExpertLoad load(layers, experts);
  std::vector<double> pop(experts);
  std::vector<int> order(experts);
  for (int l = 0; l < layers; ++l) {
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    for (int r = 0; r < experts; ++r) pop[order[r]] = 1.0 / std::pow(r + 1.0, s);
    std::discrete_distribution<int> pick(pop.begin(), pop.end());
    for (int t = 0; t < tokens; ++t) load.at(l, pick(rng)) += 1;
  }
  return load;
}

TEST(EplbRefined, ReachesTheOptimumOnSmallCasesKnownByHand) {
  // [19, 1, 1] on 3 GPUs x 2 slots. DeepSeek gives expert 0 all 3 redundant slots (4 replicas of
  // 4.75), so one GPU must pair two of them: 9.5. Best: expert 0 x3 (19/3 each) and expert 2 x2
  // (0.5 each): GPUs 19/3 + 1/2, 19/3 + 1/2, 19/3 + 1 -> 22/3.
  ExpertLoad a = make_expert_load({{19, 1, 1}});
  EXPECT_DOUBLE_EQ(peak(a, rebalance(a, {6, 1, 1, 3}, EplbPolicy::kDeepSeek), 0), 9.5);
  EXPECT_NEAR(peak(a, rebalance(a, {6, 1, 1, 3}, EplbPolicy::kRefined), 0), 22.0 / 3, 1e-12);
  // [12, 1, 3, 17, 3] on 4 GPUs x 2 slots: total 36, so 9 per GPU is perfect; it is reachable
  // (12/2 + 3, 12/2 + 3, 17/2 + 1/2, 17/2 + 1/2) while DeepSeek's plan peaks at 34/3.
  ExpertLoad b = make_expert_load({{12, 1, 3, 17, 3}});
  EXPECT_NEAR(peak(b, rebalance(b, {8, 1, 1, 4}, EplbPolicy::kDeepSeek), 0), 34.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(peak(b, rebalance(b, {8, 1, 1, 4}, EplbPolicy::kRefined), 0), 9.0);
}

TEST(EplbRefined, NeverWorseThanDeepSeekOnAnyLayer) {
  std::mt19937_64 rng(2024);
  struct Shape {
    int experts;
    EplbShape shape;
  };
  const Shape shapes[] = {
      {256, {288, 8, 18, 144}},  // DeepSeek decode: global
      {256, {288, 8, 4, 32}},    // DeepSeek prefill: hierarchical
      {64, {72, 8, 2, 36}},   {64, {96, 4, 4, 16}}, {32, {48, 1, 1, 24}},
      {24, {32, 3, 2, 8}},    {12, {16, 4, 2, 8}},  {16, {18, 1, 1, 9}},
  };
  int layers_checked = 0, layers_better = 0;
  for (const Shape& sh : shapes) {
    for (double s : {0.0, 0.3, 0.6, 1.0, 1.4}) {
      ExpertLoad load = skewed_load(4, sh.experts, s, 40 * sh.experts, rng);
      EplbPlan ds = rebalance(load, sh.shape, EplbPolicy::kDeepSeek);
      EplbPlan rf = rebalance(load, sh.shape, EplbPolicy::kRefined);
      for (int l = 0; l < load.num_layers; ++l) {
        ASSERT_LE(peak(load, rf, l), peak(load, ds, l))
            << "experts " << sh.experts << " replicas " << sh.shape.num_replicas << " gpus " << sh.shape.num_gpus
            << " s " << s << " layer " << l;
        ++layers_checked;
        layers_better += peak(load, rf, l) < peak(load, ds, l) * (1 - 1e-9);
      }
    }
  }
  EXPECT_EQ(layers_checked, 8 * 5 * 4);
  EXPECT_GT(layers_better, layers_checked / 4) << "the refined policy hardly ever improves";
}

TEST(EplbRefined, ClearlyBetterOnDeepSeekDecodeShape) {
  // 256 experts, 288 slots, 144 GPUs (2 slots each): moderately skewed loads, where the replica
  // counts rather than the hottest expert decide the peak.
  std::mt19937_64 rng(5);
  ExpertLoad load = skewed_load(8, 256, 0.3, 8 * 4096, rng);
  EplbShape shape{288, 8, 18, 144};
  std::vector<double> ds = plan_max_over_mean(load, rebalance(load, shape, EplbPolicy::kDeepSeek));
  std::vector<double> rf = plan_max_over_mean(load, rebalance(load, shape, EplbPolicy::kRefined));
  double ds_excess = 0, rf_excess = 0;
  for (int l = 0; l < load.num_layers; ++l) {
    EXPECT_LT(rf[l], ds[l]) << "layer " << l;
    ds_excess += ds[l] - 1;
    rf_excess += rf[l] - 1;
  }
  // At least a third of DeepSeek's excess over a perfect balance is gone.
  EXPECT_LT(rf_excess, ds_excess * 2 / 3) << "deepseek excess " << ds_excess << ", refined " << rf_excess;
}

}  // namespace
}  // namespace dsinfer::parallel
