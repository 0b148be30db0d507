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
  // A token's 8 experts come from the pool of its 4 chosen groups (4 x 32 = 128 experts): a node
  // is missed when none of its groups is chosen, or when its chosen groups (j x 32 experts of
  // the pool) get none of the 8: C(128 - 32j, 8) / C(128, 8).
  const double c128 = 1429702652400.0, c96 = 132601016340.0, c64 = 4426165368.0, c112 = 475491062970.0;
  // 4 nodes of 2 groups: j = 0, 1, 2 of them chosen with probability 15, 40, 15 in 70.
  EXPECT_NEAR(expected_nodes_per_token(v3, 4), 4 * (1 - (15 + 40 * c96 / c128 + 15 * c64 / c128) / 70), 1e-12);
  // 8 nodes of one group each: chosen with probability 1/2 (the old count, 4, assumed every
  // chosen group gets one of the 8 experts).
  EXPECT_NEAR(expected_nodes_per_token(v3, 8), 8 * (1 - 0.5 - 0.5 * c96 / c128), 1e-12);
  // 16 nodes, each with 16 experts of one group: that group chosen, then one of its 16 drawn.
  EXPECT_NEAR(expected_nodes_per_token(v3, 16), 16 * 0.5 * (1 - c112 / c128), 1e-12);
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
  // EP32 = 4 nodes: 4096 tokens x 2.928 nodes (above) x (7168 + 224) bytes at 58 GB/s.
  CommCost cost = normal_mode_cost(v3, c.profile("H800"), c.deepep, 32, 4096);
  double fanout = expected_nodes_per_token(v3, 4);
  EXPECT_NEAR(fanout, 2.92821, 1e-5);
  EXPECT_NEAR(cost.dispatch_bytes, 4096 * fanout * 7392, 1e-3);
  EXPECT_NEAR(cost.dispatch_seconds, 4096 * fanout * 7392 / 58e9, 1e-12);
  EXPECT_NEAR(cost.combine_seconds, 4096 * fanout * 14336 / 57e9, 1e-12);
  // The same unit on H100s has the same NIC, so the same time; within one node NVLink carries it.
  EXPECT_NEAR(normal_mode_cost(v3, c.profile("H100"), c.deepep, 32, 4096).dispatch_seconds, cost.dispatch_seconds, 1e-15);
  CommCost intra = normal_mode_cost(v3, c.profile("H800"), c.deepep, 8, 4096);
  // Inside a node each GPU holds one of V3's 8 groups, as the 8 nodes above: 3.629 GPUs a token.
  EXPECT_NEAR(intra.dispatch_seconds, 4096 * expected_nodes_per_token(v3, 8) * 7392 / 153e9, 1e-12);
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
