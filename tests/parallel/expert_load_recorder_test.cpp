#include "parallel/expert_load_recorder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "parallel/eplb.h"

namespace dsinfer::parallel {
namespace {

ExpertLoadRecorderOptions opts(int first, int layers, int experts, int window) {
  ExpertLoadRecorderOptions o;
  o.first_layer = first;
  o.num_layers = layers;
  o.num_experts = experts;
  o.window_steps = window;
  return o;
}

// One step: every token of `ids` ([tokens][top_k]) routed in model layer `layer`.
void route(ExpertLoadRecorder& r, int layer, const std::vector<int32_t>& ids, int top_k) {
  r.on_routing(layer, ids.data(), int64_t(ids.size()) / top_k, top_k);
}

TEST(ExpertLoadRecorder, CountsTokensPerLayerAndExpert) {
  // MoE layers start at model layer 3 (first_k_dense_replace), 2 of them, 4 experts, top-2.
  ExpertLoadRecorder r(opts(3, 2, 4, 0));
  route(r, 3, {0, 1, 0, 2, 3, 0}, 2);  // 3 tokens
  route(r, 4, {1, 2}, 2);
  EXPECT_EQ(r.snapshot().values, std::vector<double>(8, 0.0)) << "a step in progress is not in the snapshot";
  r.on_step_end();
  ExpertLoad s = r.snapshot();
  EXPECT_EQ(s.values, (std::vector<double>{3, 1, 1, 1, 0, 1, 1, 0}));
  EXPECT_EQ(r.steps_in_window(), 1);
  EXPECT_EQ(r.ignored(), 0);
}

TEST(ExpertLoadRecorder, IgnoresOutOfRangeIdsAndLayers) {
  ExpertLoadRecorder r(opts(1, 1, 3, 0));
  route(r, 1, {0, -1, 3, 2}, 1);  // -1 and 3 are not experts
  route(r, 0, {0, 1}, 2);         // a dense layer
  route(r, 2, {0}, 1);            // past the last MoE layer
  r.on_step_end();
  EXPECT_EQ(r.snapshot().values, (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(r.ignored(), 2 + 2 + 1);
}

TEST(ExpertLoadRecorder, SlidingWindowKeepsTheLastSteps) {
  ExpertLoadRecorder r(opts(0, 1, 2, 2));
  for (int step = 1; step <= 5; ++step) {
    std::vector<int32_t> ids(step, 0);  // step k routes k tokens to expert 0 and one to expert 1
    ids.push_back(1);
    route(r, 0, ids, 1);
    r.on_step_end();
    int64_t kept = std::min(step, 2);
    EXPECT_EQ(r.steps_in_window(), kept);
    double want0 = step == 1 ? 1 : step + (step - 1);
    EXPECT_EQ(r.snapshot().values, (std::vector<double>{want0, double(kept)})) << "after step " << step;
  }
  EXPECT_EQ(r.total_steps(), 5);
  r.reset();
  EXPECT_EQ(r.snapshot().values, (std::vector<double>{0, 0}));
  EXPECT_EQ(r.steps_in_window(), 0);
  route(r, 0, {1}, 1);
  r.on_step_end();
  EXPECT_EQ(r.snapshot().values, (std::vector<double>{0, 1}));
}

TEST(ExpertLoadRecorder, WindowZeroKeepsEveryStep) {
  ExpertLoadRecorder r(opts(0, 1, 2, 0));
  for (int step = 0; step < 1000; ++step) {
    route(r, 0, {0, 1, 1}, 1);
    r.on_step_end();
  }
  EXPECT_EQ(r.snapshot().values, (std::vector<double>{1000, 2000}));
  EXPECT_EQ(r.steps_in_window(), 1000);
}

TEST(ExpertLoadRecorder, WritesTheLoadFormatThatEplbReads) {
  ExpertLoadRecorder r(opts(3, 2, 4, 0));
  route(r, 3, {0, 1, 0, 2}, 2);
  route(r, 4, {3, 3}, 1);
  r.on_step_end();
  EXPECT_EQ(r.to_json(), "[\n  [2,1,1,0],\n  [0,0,0,2]\n]\n");
  std::string path = (std::filesystem::temp_directory_path() / "dsinfer_recorder_test.json").string();
  r.write_json(path);
  ExpertLoad back = read_expert_load_file(path);
  EXPECT_EQ(back.values, r.snapshot().values);
  std::remove(path.c_str());
  // The dump feeds the balancer directly.
  EplbPlan plan = rebalance(back, {8, 1, 1, 2});
  EXPECT_EQ(plan.num_layers, 2);
}

TEST(ExpertLoadRecorder, ConcurrentRoutingAndSnapshotsLoseNothing) {
  // Two forward threads report while a third closes steps and snapshots; every count must land in
  // exactly one step and snapshots never go backwards.
  ExpertLoadRecorder r(opts(0, 2, 8, 0));
  constexpr int kCalls = 20000;
  std::atomic<bool> done{false};
  std::vector<std::thread> forward;
  for (int t = 0; t < 2; ++t)
    forward.emplace_back([&, t] {
      std::vector<int32_t> ids = {int32_t(t), int32_t(t + 2), int32_t(t + 4), 7};
      for (int i = 0; i < kCalls; ++i) r.on_routing(i % 2, ids.data(), 2, 2);
    });
  std::thread observer([&] {
    double last = 0;
    while (!done.load()) {
      r.on_step_end();
      ExpertLoad s = r.snapshot();
      double total = 0;
      for (double v : s.values) total += v;
      EXPECT_GE(total, last);
      last = total;
    }
  });
  for (auto& t : forward) t.join();
  done = true;
  observer.join();
  r.on_step_end();
  ExpertLoad s = r.snapshot();
  double total = 0;
  for (double v : s.values) total += v;
  EXPECT_EQ(total, 2.0 * kCalls * 4);
  EXPECT_EQ(s.at(0, 7) + s.at(1, 7), 2.0 * kCalls);
}

TEST(ExpertLoadRecorder, RejectsBadOptions) {
  EXPECT_THROW(ExpertLoadRecorder(opts(0, 0, 4, 0)), Error);
  EXPECT_THROW(ExpertLoadRecorder(opts(0, 2, 0, 0)), Error);
  EXPECT_THROW(ExpertLoadRecorder(opts(-1, 2, 4, 0)), Error);
  EXPECT_THROW(ExpertLoadRecorder(opts(0, 2, 4, -1)), Error);
  try {
    ExpertLoadRecorder(opts(0, 61, 256, 1 << 20));
    ADD_FAILURE() << "huge window accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use a shorter window"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dsinfer::parallel
