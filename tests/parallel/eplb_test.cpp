#include "parallel/eplb.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>

#include "base/error.h"

namespace dsinfer::parallel {
namespace {

const std::vector<std::vector<double>> kReadmeLoad = {{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
                                                      {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};

std::vector<int32_t> layer_phy2log(const EplbPlan& p, int l) {
  return {p.phy2log.begin() + size_t(l) * p.num_replicas, p.phy2log.begin() + size_t(l + 1) * p.num_replicas};
}

// Throws, and the message contains `needle`.
template <typename Fn>
void expect_error(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Constraints every plan meets, whatever the policy.
void expect_valid_plan(const ExpertLoad& load, const EplbShape& shape, const EplbPlan& plan) {
  ASSERT_EQ(plan.num_layers, load.num_layers);
  ASSERT_EQ(plan.num_logical, load.num_experts);
  ASSERT_EQ(plan.phy2log.size(), size_t(load.num_layers) * shape.num_replicas);
  ASSERT_EQ(plan.log2phy.size(), size_t(load.num_layers) * load.num_experts * plan.max_replicas);
  const int group_size = load.num_experts / shape.num_groups;
  const int slots_per_node = shape.num_replicas / shape.num_nodes;
  for (int l = 0; l < load.num_layers; ++l) {
    std::vector<int> seen(load.num_experts, 0);
    std::map<int, int> group_node;
    for (int s = 0; s < shape.num_replicas; ++s) {
      int e = plan.phy_to_log(l, s);
      ASSERT_GE(e, 0);
      ASSERT_LT(e, load.num_experts);
      ++seen[e];
      if (shape.hierarchical()) {  // replicas never leave their group's node
        auto [it, fresh] = group_node.emplace(e / group_size, s / slots_per_node);
        ASSERT_EQ(it->second, s / slots_per_node) << "layer " << l << " group " << e / group_size << " spans nodes";
      }
    }
    for (int e = 0; e < load.num_experts; ++e) {
      ASSERT_GE(seen[e], 1) << "layer " << l << " expert " << e << " has no replica";
      ASSERT_EQ(plan.count(l, e), seen[e]);
      for (int r = 0; r < plan.max_replicas; ++r) {
        int s = plan.log_to_phy(l, e, r);
        if (r < seen[e]) {
          ASSERT_GE(s, 0);
          ASSERT_EQ(plan.phy_to_log(l, s), e);
        } else {
          ASSERT_EQ(s, -1);
        }
      }
    }
  }
}

TEST(Eplb, ReadmeExampleGivesPublishedPlacement) {
  // The EPLB repository's README: 2 layers x 12 experts, 16 replicas, 4 groups, 2 nodes, 8 GPUs.
  EplbPlan p = rebalance(kReadmeLoad, 16, 4, 2, 8);
  EXPECT_TRUE(p.hierarchical);
  EXPECT_EQ(layer_phy2log(p, 0), (std::vector<int32_t>{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1}));
  EXPECT_EQ(layer_phy2log(p, 1), (std::vector<int32_t>{7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}));
  EXPECT_EQ(p.logcnt, (std::vector<int32_t>{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1,  //
                                            1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1}));
  // log2phy as eplb.py orders replicas (by replication order, not slot order); from the torch
  // reference tests/parallel/eplb_reference.py.
  ASSERT_EQ(p.max_replicas, 2);
  const std::vector<int32_t> want0 = {12, -1, 15, 13, 11, -1, 6, -1, 7, 5, 0, 2, 1, -1, 3, -1, 4, -1, 9, -1, 8, 10, 14, -1};
  EXPECT_EQ(std::vector<int32_t>(p.log2phy.begin(), p.log2phy.begin() + 24), want0);
  expect_valid_plan(make_expert_load(kReadmeLoad), {16, 4, 2, 8}, p);
}

TEST(Eplb, TiesBreakAsTorchUnstableSort) {
  // 34 replicas with three distinct loads packed onto 2 GPUs: the order in which tied replicas are
  // packed is torch's (unstable) sort order. Expected from the torch reference; a stable sort gives
  // [2, 8, 14, 20, 26, 32, 7, ...] instead.
  ExpertLoad load(1, 34);
  for (int e = 0; e < 34; ++e) load.at(0, e) = e % 3;
  EplbPlan p = rebalance(load, {34, 1, 1, 2});
  EXPECT_EQ(layer_phy2log(p, 0),
            (std::vector<int32_t>{8,  14, 11, 26, 29, 32, 25, 31, 13, 4,  7,  27, 24, 12, 21, 15, 18,
                                  17, 20, 23, 5,  2,  28, 1,  22, 19, 10, 16, 9,  33, 0,  3,  30, 6}));
}

TEST(Eplb, ReplicationPicksFirstOfEqualLoadsPerReplica) {
  // Experts 1 and 3 tie for the highest load; the one redundant slot goes to the first (torch.max).
  EplbPlan p = rebalance({{1, 5, 2, 5}}, 5, 1, 1, 1);
  EXPECT_EQ(p.logcnt, (std::vector<int32_t>{1, 2, 1, 1}));
  // Ties between equally light packs go to the lowest pack: 3 GPUs, one replica each -> identity.
  EplbPlan q = rebalance({{0, 0, 0}}, 3, 1, 1, 3);
  EXPECT_EQ(q.phy2log, (std::vector<int32_t>{0, 1, 2}));
}

TEST(Eplb, GpuLoadsAndImbalanceByHand) {
  // Expert 0 (load 6) gets both redundant slots: 3 replicas of 2 each, so every GPU carries 4.
  ExpertLoad load = make_expert_load({{6, 2, 2, 2}});
  EplbShape shape{6, 1, 1, 3};
  EplbPlan p = rebalance(load, shape);
  EXPECT_EQ(p.logcnt, (std::vector<int32_t>{3, 1, 1, 1}));
  EXPECT_EQ(gpu_loads(load, p, 0), (std::vector<double>{4, 4, 4}));
  EXPECT_DOUBLE_EQ(plan_max_over_mean(load, p)[0], 1.0);
  // Without EPLB: experts 0,1 on GPU 0 (8), 2,3 on GPU 1 (4), GPU 2 idle; mean 4.
  EXPECT_EQ(gpu_loads_unbalanced(load, shape, 0), (std::vector<double>{8, 4, 0}));
  EXPECT_DOUBLE_EQ(unbalanced_max_over_mean(load, shape)[0], 2.0);
  EXPECT_DOUBLE_EQ(max_over_mean({0, 0, 0}), 1.0);  // idle layer: nothing to balance
}

TEST(Eplb, PolicyChoiceFollowsGroupsAndNodes) {
  // 10 experts in 3 groups cannot be hierarchical; with 2 nodes (3 % 2 != 0) the global policy
  // applies and the group count is irrelevant.
  ExpertLoad load = make_expert_load({{5, 1, 4, 2, 3, 9, 7, 0, 6, 8}});
  EplbShape global{12, 3, 2, 4};
  EXPECT_FALSE(global.hierarchical());
  EplbPlan p = rebalance(load, global);
  EXPECT_FALSE(p.hierarchical);
  expect_valid_plan(load, global, p);
  // Identical to one group on one node, as eplb.py does.
  EXPECT_EQ(p.phy2log, rebalance(load, {12, 1, 1, 4}).phy2log);
}

TEST(Eplb, PlansAreValidOnRandomShapes) {
  std::mt19937 rng(11);
  for (int t = 0; t < 200; ++t) {
    int nodes = 1 + int(rng() % 4), gpus = nodes * (1 + int(rng() % 4));
    int groups = std::vector<int>{1, 2, 4, 8}[rng() % 4];
    int experts = groups % nodes == 0 ? groups * (1 + int(rng() % 6)) : 2 + int(rng() % 30);
    int replicas = ((experts + gpus - 1) / gpus + int(rng() % 3)) * gpus;
    ExpertLoad load(1 + int(rng() % 3), experts);
    for (double& v : load.values) v = double(rng() % 50);
    EplbShape shape{replicas, groups, nodes, gpus};
    for (EplbPolicy policy : {EplbPolicy::kDeepSeek, EplbPolicy::kRefined}) {
      SCOPED_TRACE(testing::Message() << "case " << t << " " << to_string(policy) << " experts " << experts
                                      << " replicas " << replicas << " groups " << groups << " nodes " << nodes
                                      << " gpus " << gpus);
      expect_valid_plan(load, shape, rebalance(load, shape, policy));
    }
  }
}

TEST(Eplb, RejectsInvalidShapesWithActionableMessages) {
  ExpertLoad load = make_expert_load(kReadmeLoad);  // 12 experts
  expect_error([&] { rebalance(load, {15, 4, 2, 8}); }, "must be a multiple of gpus");
  expect_error([&] { rebalance(load, {16, 4, 3, 8}); }, "must be a multiple of nodes");
  expect_error([&] { rebalance(load, {8, 4, 2, 8}); }, "at least the number of experts");
  expect_error([&] { rebalance(load, {16, 8, 2, 8}); }, "divisible by groups");
  expect_error([&] { rebalance(load, {0, 4, 2, 8}); }, "replicas must be positive");
  expect_error([&] { rebalance(load, {16, 0, 2, 8}); }, "groups must be positive");
  expect_error([&] { rebalance(load, {16, 4, 0, 8}); }, "nodes must be positive");
  expect_error([&] { rebalance(load, {16, 4, 2, -8}); }, "gpus must be positive");
  expect_error([&] { rebalance(load, {1 << 20, 4, 2, 8}); }, "more than this planner supports");
  // Hierarchical divisibility is not required when the policy is global (groups % nodes != 0).
  EXPECT_NO_THROW(rebalance(load, {16, 5, 2, 8}));
}

TEST(Eplb, RejectsInvalidLoads) {
  expect_error([] { rebalance({{1, -2, 3}}, 3, 1, 1, 1); }, "negative");
  expect_error([] { rebalance({{1, std::nan(""), 3}}, 3, 1, 1, 1); }, "NaN");
  expect_error([] { rebalance({{1, std::numeric_limits<double>::infinity(), 3}}, 3, 1, 1, 1); }, "infinite");
  expect_error([] { rebalance({{1, 2, 3}, {1, 2}}, 3, 1, 1, 1); }, "ragged");
  expect_error([] { rebalance({}, 3, 1, 1, 1); }, "empty");
  expect_error([] { parse_eplb_policy("greedy"); }, "choose deepseek or refined");
  EXPECT_EQ(parse_eplb_policy("refined"), EplbPolicy::kRefined);
}

TEST(Eplb, ZeroLoadsStillPlaceEveryExpert) {
  ExpertLoad load(2, 8);
  EplbShape shape{12, 2, 2, 4};
  for (EplbPolicy policy : {EplbPolicy::kDeepSeek, EplbPolicy::kRefined}) {
    EplbPlan p = rebalance(load, shape, policy);
    expect_valid_plan(load, shape, p);
    EXPECT_EQ(plan_max_over_mean(load, p), (std::vector<double>{1, 1}));
  }
}

}  // namespace
}  // namespace dsinfer::parallel
