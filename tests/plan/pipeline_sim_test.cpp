// The discrete-event engine on schedules worked out by hand.
#include "plan/pipeline_sim.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "plan/load_balance.h"

namespace dsinfer::plan {
namespace {

TEST(Pipeline, ChainOnOneLaneAdds) {
  PipelineBuilder b;
  int a = b.add("a", Lane::kCompute, 1, 0, {}, 0, 0, 0);
  b.add("b", Lane::kCompute, 2, 0, {a}, 0, 1, 0);
  PipelineResult r = run_pipeline(b.ops());
  EXPECT_DOUBLE_EQ(r.makespan, 3);
  EXPECT_DOUBLE_EQ(r.start[1], 1);
}

TEST(Pipeline, IndependentLanesOverlap) {
  PipelineBuilder b;
  b.add("work", Lane::kCompute, 3, 10, {}, 0, 0, 0);
  b.add("send", Lane::kNetwork, 2, 0, {}, 0, 0, 0);
  PipelineResult r = run_pipeline(b.ops());
  EXPECT_DOUBLE_EQ(r.makespan, 3);
  EXPECT_DOUBLE_EQ(r.busy[int(Lane::kCompute)], 3);
  EXPECT_DOUBLE_EQ(r.busy[int(Lane::kNetwork)], 2);
  EXPECT_DOUBLE_EQ(r.flops, 10);
}

TEST(Pipeline, TwoMicroBatchesHidePartOfTheNetwork) {
  // Each micro-batch: compute 2 -> network 3 -> compute 1.
  //   t=0 C1(mb0) [0,2]; t=2 N(mb0) [2,5] and C1(mb1) [2,4]; compute idles 4..5;
  //   t=5 C2(mb0) [5,6] and N(mb1) [5,8]; t=8 C2(mb1) [8,9].
  PipelineBuilder b;
  for (int mb = 0; mb < 2; ++mb) {
    int c1 = b.add("attention", Lane::kCompute, 2, 0, {}, 0, 0, mb);
    int n = b.add("dispatch", Lane::kNetwork, 3, 0, {c1}, 0, 1, mb);
    b.add("experts", Lane::kCompute, 1, 0, {n}, 0, 2, mb);
  }
  PipelineResult r = run_pipeline(b.ops());
  EXPECT_DOUBLE_EQ(r.makespan, 9);
  EXPECT_DOUBLE_EQ(r.start[3], 2);  // mb1's attention runs while mb0's dispatch is in flight
  EXPECT_DOUBLE_EQ(r.start[2], 5);
  EXPECT_DOUBLE_EQ(r.start[4], 5);
  EXPECT_DOUBLE_EQ(r.busy[int(Lane::kCompute)], 6);
  ASSERT_EQ(r.busy_by_name.size(), 3u);
  EXPECT_EQ(r.busy_by_name[1].name, "dispatch");
  EXPECT_DOUBLE_EQ(r.busy_by_name[1].seconds, 6);
}

TEST(Pipeline, ReadyOpsRunInLayerStageMicroBatchOrder) {
  PipelineBuilder b;
  b.add("late", Lane::kCompute, 1, 0, {}, 1, 0, 0);
  b.add("early", Lane::kCompute, 1, 0, {}, 0, 5, 1);
  PipelineResult r = run_pipeline(b.ops());
  EXPECT_DOUBLE_EQ(r.start[1], 0);
  EXPECT_DOUBLE_EQ(r.start[0], 1);
}

TEST(Pipeline, RejectsBadGraphs) {
  std::vector<PipelineOp> ops(2);
  ops[0].deps = {1};  // a later op
  EXPECT_THROW(run_pipeline(ops), Error);
  ops[0].deps = {};
  ops[1].seconds = -1;
  EXPECT_THROW(run_pipeline(ops), Error);
}

TEST(LoadBalance, ExpectedMaximaOfNormals) {
  EXPECT_DOUBLE_EQ(expected_max_standard_normal(1), 0);
  EXPECT_NEAR(expected_max_standard_normal(2), 1 / std::sqrt(M_PI), 1e-6);      // 0.5642
  EXPECT_NEAR(expected_max_standard_normal(3), 1.5 / std::sqrt(M_PI), 1e-6);    // 0.8463
  EXPECT_NEAR(expected_max_standard_normal(5), 1.162964, 1e-5);                 // tabulated
  EXPECT_NEAR(expected_max_standard_normal(100), 2.507594, 1e-4);               // tabulated
}

TEST(LoadBalance, Factors) {
  EXPECT_DOUBLE_EQ(expert_imbalance_factor(1.4, 1e4, 1), 1.4);
  EXPECT_NEAR(expert_imbalance_factor(1.2, 1e4, 2), 1.2 * (1 + 0.5641896 / 100), 1e-6);
  EXPECT_DOUBLE_EQ(attention_straggler_factor(0, 64, 144), 1);
  EXPECT_NEAR(attention_straggler_factor(1, 100, 2), 1 + 0.5641896 / 10, 1e-6);
}

}  // namespace
}  // namespace dsinfer::plan
