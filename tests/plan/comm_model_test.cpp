#include "plan/comm_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/config.h"

namespace dsinfer::plan {
namespace {

const std::string kV3 = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v3.json";
const std::string kV2Lite = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v2-lite.json";
const std::string kHardware = std::string(DSINFER_SOURCE_DIR) + "/data/hardware.json";

TEST(CommModel, NodesPerTokenWithGroupLimitedRouting) {
  model::ModelConfig v3 = model::load_config(kV3);  // 8 groups, top-4 groups, top-8 experts
  EXPECT_DOUBLE_EQ(expected_nodes_per_token(v3, 1), 1);
  // 4 nodes of 2 groups: a node is missed when none of its 2 groups is among the 4 chosen of 8,
  // C(6,4)/C(8,4) = 15/70; expected nodes 4 x 55/70.
  EXPECT_NEAR(expected_nodes_per_token(v3, 4), 4 * 55.0 / 70, 1e-12);
  // 8 nodes of one group each: exactly the 4 chosen groups' nodes.
  EXPECT_NEAR(expected_nodes_per_token(v3, 8), 4, 1e-12);
  // 16 nodes, each group over 2 nodes with 2 of the 8 experts: 4 x 2 x (1 - 1/2^2).
  EXPECT_NEAR(expected_nodes_per_token(v3, 16), 6, 1e-12);
  // V2-Lite routes greedily: 6 distinct experts of 64, 16 per node, drawn without replacement:
  // a node is missed with C(48,6)/C(64,6) = 12271512/74974368.
  model::ModelConfig lite = model::load_config(kV2Lite);
  EXPECT_NEAR(expected_nodes_per_token(lite, 4), 4 * (1 - 12271512.0 / 74974368.0), 1e-12);
}

TEST(CommModel, RanksPerTokenWithoutReplacement) {
  model::ModelConfig lite = model::load_config(kV2Lite);
  // 2 ranks of 32 experts: missed with C(32,6)/C(64,6) = 906192/74974368.
  EXPECT_NEAR(expected_ranks_per_token(lite, 2), 2 * (1 - 906192.0 / 74974368.0), 1e-12);
}

TEST(CommModel, LowLatencyReproducesDeepEpsLatencies) {
  // DeepEP's low-latency table is 128 tokens, top-8, FP8 dispatch, BF16 combine; counting bytes
  // the way we do must give back its latencies from its bandwidths.
  model::ModelConfig v3 = model::load_config(kV3);
  HardwareCatalog c = load_hardware(kHardware);
  struct Row { int ep; double dispatch_us, combine_us; };
  for (Row r : {Row{8, 77, 114}, Row{16, 118, 195}, Row{32, 155, 273}, Row{64, 173, 314}, Row{128, 192, 369},
                Row{256, 194, 360}}) {
    CommCost cost = low_latency_cost(v3, c.profile("H800"), c.deepep, r.ep, 128);
    EXPECT_NEAR(cost.dispatch_seconds * 1e6 / r.dispatch_us, 1, 0.05) << "EP" << r.ep;
    EXPECT_NEAR(cost.combine_seconds * 1e6 / r.combine_us, 1, 0.05) << "EP" << r.ep;
  }
}

TEST(CommModel, NormalModeByHand) {
  model::ModelConfig v3 = model::load_config(kV3);
  HardwareCatalog c = load_hardware(kHardware);
  // EP32 = 4 nodes: 4096 tokens x 3.143 nodes x (7168 + 224) bytes at 58 GB/s.
  CommCost cost = normal_mode_cost(v3, c.profile("H800"), c.deepep, 32, 4096);
  double fanout = 4 * 55.0 / 70;
  EXPECT_NEAR(cost.dispatch_bytes, 4096 * fanout * 7392, 1e-3);
  EXPECT_NEAR(cost.dispatch_seconds, 4096 * fanout * 7392 / 58e9, 1e-12);
  EXPECT_NEAR(cost.combine_seconds, 4096 * fanout * 14336 / 57e9, 1e-12);
  // The same unit on H100s has the same NIC, so the same time; within one node NVLink carries it.
  EXPECT_NEAR(normal_mode_cost(v3, c.profile("H100"), c.deepep, 32, 4096).dispatch_seconds, cost.dispatch_seconds, 1e-15);
  CommCost intra = normal_mode_cost(v3, c.profile("H800"), c.deepep, 8, 4096);
  // Inside a node each GPU holds one of V3's 8 groups and a token's experts come from 4 of them.
  EXPECT_NEAR(intra.dispatch_seconds, 4096 * 4.0 * 7392 / 153e9, 1e-12);
  // H100's NVLink is 450 vs 200 GB/s per direction: 2.25x faster inside a node.
  EXPECT_NEAR(normal_mode_cost(v3, c.profile("H100"), c.deepep, 8, 4096).dispatch_seconds * 2.25,
              intra.dispatch_seconds, 1e-12);
  EXPECT_DOUBLE_EQ(normal_mode_cost(v3, c.profile("H800"), c.deepep, 1, 4096).dispatch_seconds, 0);
}

TEST(CommModel, InterpolatesInLogEpAndClamps) {
  std::vector<EpBandwidth> t = {{32, 48e9, 53e9}, {64, 43e9, 46e9}, {128, 39e9, 39e9}};
  EXPECT_DOUBLE_EQ(interpolate_bandwidth(t, 16, true), 48e9);
  EXPECT_DOUBLE_EQ(interpolate_bandwidth(t, 256, false), 39e9);
  EXPECT_NEAR(interpolate_bandwidth(t, 45, true), 48e9 + std::log(45.0 / 32) / std::log(2.0) * -5e9, 1);
  EXPECT_DOUBLE_EQ(interpolate_bandwidth(t, 64, false), 46e9);
}

}  // namespace
}  // namespace dsinfer::plan
