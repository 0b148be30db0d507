// The overlap model on measured stage costs: schedules worked out by hand, and the file's errors.
#include "plan/measured_pipeline.h"

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"

namespace dsinfer::plan {
namespace {

// One MoE layer, no dense layer: per micro-batch (two of them) attention 1, experts 1, shared
// 0.5; no gate, finish or other work.
MeasuredStep one_moe_layer(double dispatch_bytes, double combine_bytes) {
  MeasuredStep m;
  m.phase = "decode";
  m.payload = "bf16";
  m.stages.attention = 2;
  m.stages.experts = 2;
  m.stages.shared = 1;
  m.dispatch_bytes = dispatch_bytes;
  m.combine_bytes = combine_bytes;
  m.measured_step_s = 5;
  return m;
}

NetworkCosts one_byte_per_second() { return {0, 1}; }

TEST(MeasuredPipeline, WithoutNetworkTimeTheStepIsTheSumOfCompute) {
  MeasuredStep m;
  m.stages = {3, 0.25, 0.5, 4, 1.5, 0.75, 2, 0.5};
  for (int mb : {1, 2}) {
    const PredictedStep p = predict_step(m, 4, 3, NetworkCosts{}, mb);
    EXPECT_NEAR(p.step_s, m.stages.total(), 1e-12) << mb;
    EXPECT_NEAR(p.compute_s, m.stages.total(), 1e-12) << mb;
    EXPECT_NEAR(p.exposed_s, 0, 1e-12) << mb;
    EXPECT_DOUBLE_EQ(p.network_s, 0) << mb;
  }
}

TEST(MeasuredPipeline, TwoMicroBatchesHideADispatchAsLongAsAnAttention) {
  // Each micro-batch's dispatch takes 1 s (1 byte at 1 B/s), as long as its attention.
  //   one micro-batch:  attention [0,2]; dispatch of 2 bytes [2,4] beside shared [2,3];
  //                     experts wait until 4: [4,6]. 1 s exposed.
  //   two: attention(A) [0,1]; A's dispatch [1,2] beside attention(B) [1,2]; B's dispatch
  //        [2,3] beside A's experts [2,3]; A's shared [3,3.5]; B's experts [3.5,4.5], shared
  //        [4.5,5]: nothing exposed, the step is the sum of compute.
  const MeasuredStep m = one_moe_layer(2, 0);
  const PredictedStep one = predict_step(m, 1, 1, one_byte_per_second(), 1);
  EXPECT_DOUBLE_EQ(one.step_s, 6);
  EXPECT_DOUBLE_EQ(one.exposed_s, 1);
  EXPECT_DOUBLE_EQ(one.network_s, 2);
  const PredictedStep two = predict_step(m, 1, 1, one_byte_per_second(), 2);
  EXPECT_DOUBLE_EQ(two.step_s, 5);
  EXPECT_DOUBLE_EQ(two.compute_s, 5);
  EXPECT_DOUBLE_EQ(two.exposed_s, 0);
}

TEST(MeasuredPipeline, ALongerCombineShowsOnceTheComputeRunsOut) {
  // Combines of 3 s per micro-batch: A's leaves at 3 (after its experts) and lands at 6,
  // B's leaves at 4.5 but waits for the network until 6: lands at 9. The step ends with B's
  // finish: 9, of which 5 compute.
  const MeasuredStep m = one_moe_layer(2, 6);
  const PredictedStep two = predict_step(m, 1, 1, one_byte_per_second(), 2);
  EXPECT_DOUBLE_EQ(two.step_s, 9);
  EXPECT_DOUBLE_EQ(two.exposed_s, 4);
  EXPECT_DOUBLE_EQ(two.network_s, 8);
}

TEST(MeasuredPipeline, TheGraphFollowsTheModelsProgramOrder) {
  const std::vector<PipelineOp> ops = measured_step_graph(one_moe_layer(2, 2), 2, 1, one_byte_per_second(), 2);
  std::vector<std::string> compute;
  for (const PipelineOp& op : ops)
    if (op.lane == Lane::kCompute) compute.push_back(op.name + "/" + std::to_string(op.micro_batch));
  const std::vector<std::string> want = {
      "attention/0",      "attention/1",               // layer 0, dense
      "dense MLP/0",      "dense MLP/1",               //
      "attention/0",      "gate and dispatch post/0",  // layer 1, MoE
      "attention/1",      "gate and dispatch post/1",  //
      "routed experts/0", "shared experts/0",          //
      "routed experts/1", "shared experts/1",          //
      "combine finish/0", "combine finish/1",          // after the last layer
      "other/0"};
  EXPECT_EQ(compute, want);
}

TEST(MeasuredPipeline, NormalModeWaitsForTheCountExchange) {
  MeasuredStep m = one_moe_layer(0, 0);
  m.normal_mode = true;
  const NetworkCosts net{0.25, 1};
  // Nothing sent, yet every MoE layer and micro-batch waits one latency for the counts.
  EXPECT_DOUBLE_EQ(predict_step(m, 1, 1, net, 1).step_s, 5.25);
  EXPECT_DOUBLE_EQ(predict_step(m, 1, 1, net, 2).step_s, 5.5);
}

TEST(MeasuredPipeline, FileRoundTripsAndCompares) {
  StageCosts c;
  c.origin = "mem";
  c.source = "test";
  c.ranks = 2;
  c.layers = 1;
  c.moe_layers = 1;
  c.network = one_byte_per_second();
  MeasuredStep one = one_moe_layer(2, 0), two = one;
  one.measured_step_s = 6;
  one.measured_exposed_s = 1;
  two.micro_batches = 2;
  two.measured_step_s = 5;
  c.steps = {one, two};
  const StageCosts back = parse_stage_costs(to_json(c), "mem");
  ASSERT_EQ(back.steps.size(), 2u);
  EXPECT_EQ(back.steps[1].micro_batches, 2);
  EXPECT_DOUBLE_EQ(back.steps[0].stages.experts, 2);
  EXPECT_DOUBLE_EQ(back.network.bytes_per_s, 1);
  const std::vector<StageComparison> rows = compare_stage_costs(back);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[0].predicted.step_s, 6);
  EXPECT_FALSE(rows[0].has_from_one);
  EXPECT_DOUBLE_EQ(rows[1].predicted.step_s, 5);
  ASSERT_TRUE(rows[1].has_from_one);
  EXPECT_DOUBLE_EQ(rows[1].from_one.step_s, 5);
  const std::string text = format_stage_comparison(back, rows);
  EXPECT_NE(text.find("two micro-batches against one"), std::string::npos) << text;
  const nlohmann::json j = to_json(back, rows);
  EXPECT_DOUBLE_EQ(j["steps"][1]["measured_on_off"].get<double>(), 5.0 / 6);
}

std::string error_of(const nlohmann::json& j) {
  try {
    parse_stage_costs(j, "costs.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(MeasuredPipeline, MalformedFilesNameTheKey) {
  StageCosts c;
  c.ranks = 2;
  c.layers = 2;
  c.moe_layers = 1;
  c.network = {1e-6, 1e9};
  c.steps = {one_moe_layer(100, 100)};
  const nlohmann::json good = to_json(c);
  EXPECT_EQ(error_of(good), "");

  auto broken = [&](auto edit) {
    nlohmann::json j = good;
    edit(j);
    return error_of(j);
  };
  EXPECT_NE(broken([](auto& j) { j["format"] = "dsinfer-hardware-1"; })
                .find("this dsinfer reads 'dsinfer-stage-costs-1'"),
            std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["steps"][0].erase("measured_step_s"); }).find("'steps[0].measured_step_s'"),
            std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["steps"][0]["micro_batches"] = 3; }).find("'steps[0].micro_batches'"),
            std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["steps"][0]["stages_s"]["experts"] = -1; }).find("'steps[0].stages_s.experts'"),
            std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["steps"][0]["stages_s"]["gemm"] = 1; }).find("gemm"), std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["steps"][0]["dispatch_mode"] = "fast"; }).find("'steps[0].dispatch_mode'"),
            std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["moe_layers"] = 3; }).find("'moe_layers'"), std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["network"]["bandwidth_gb_per_s"] = 0; }).find("bandwidth_gb_per_s must be positive"),
            std::string::npos);
  EXPECT_NE(broken([](auto& j) { j["steps"] = nlohmann::json::array(); }).find("'steps'"), std::string::npos);
  EXPECT_NE(error_of(nlohmann::json::array()).find("costs.json"), std::string::npos);
  EXPECT_THROW(load_stage_costs("/nonexistent/costs.json"), Error);
}

}  // namespace
}  // namespace dsinfer::plan
