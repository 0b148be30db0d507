// dsinfer plan's arithmetic: DeepSeek's published day (the figures DeepSeek and the community
// derived from it) and workloads worked out by hand, plus every way a workload file can be wrong.
#include "plan/capacity.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "plan/workload.h"

namespace dsinfer::plan {
namespace {

using nlohmann::json;

const std::string kPublishedDay = std::string(DSINFER_SOURCE_DIR) + "/docs/examples/deepseek-2025-02-28.json";

// Expects parse_workload to throw with every fragment in the message.
void expect_error(const json& j, std::initializer_list<std::string> fragments) {
  try {
    parse_workload(j, "w.json");
    ADD_FAILURE() << "no error for " << j.dump();
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

// Hand-worked: 1.728e9 input tokens at 10,000 tokens/s per node fill 1.728e9 / 8.64e8 = 2 nodes;
// 1.728e8 output tokens at 1,000 tokens/s per node fill 2 nodes.
json small_service() {
  return {{"input_tokens_per_day", 1.728e9},
          {"cached_input_tokens_per_day", 0.864e9},
          {"output_tokens_per_day", 1.728e8},
          {"prefill_tokens_per_s_per_node", 10000},
          {"decode_tokens_per_s_per_node", 1000},
          {"gpus_per_node", 8},
          {"gpu_hour_usd", 2.5},
          {"price_per_m_input_cache_hit", 0.1},
          {"price_per_m_input_cache_miss", 0.5},
          {"price_per_m_output", 2.0},
          {"prefill_nodes_per_unit", 4},
          {"decode_nodes_per_unit", 2}};
}

TEST(Capacity, ReproducesDeepSeeksPublishedDay) {
  Workload w = load_workload(kPublishedDay);
  CapacityPlan p = plan_capacity(w);
  // 608e9 / (73.7k * 86400) = 95.5 prefill nodes; 168e9 / (14.8k * 86400) = 131.4 decode nodes.
  EXPECT_NEAR(p.prefill_nodes, 95.5, 0.05);
  EXPECT_NEAR(p.decode_nodes, 131.4, 0.05);
  EXPECT_NEAR(p.total_nodes, 226.9, 0.05);
  EXPECT_NEAR(p.prefill_units, 23.9, 0.05);  // of 4 nodes
  EXPECT_NEAR(p.decode_units, 7.3, 0.05);    // of 18 nodes
  // Charged on the observed 226.75 nodes: 226.75 * 8 GPUs * $2 * 24 h = $87,072.
  EXPECT_DOUBLE_EQ(p.charged_nodes, 226.75);
  EXPECT_NEAR(p.cost_usd_per_day, 87072, 1e-6);
  // 342B * 0.14 + 266B * 0.55 + 168B * 2.19 per million = 47,880 + 146,300 + 367,920.
  EXPECT_NEAR(p.revenue.input_cache_hit_usd, 47880, 1e-6);
  EXPECT_NEAR(p.revenue.input_cache_miss_usd, 146300, 1e-6);
  EXPECT_NEAR(p.revenue.output_usd, 367920, 1e-6);
  EXPECT_NEAR(p.revenue.total_usd(), 562000, 1000);  // "about $562k" ($562,027 published)
  EXPECT_NEAR(p.cost_profit_margin, 5.45, 0.01);     // 545%
  EXPECT_FALSE(p.has_hourly);
}

TEST(Capacity, HandWorkedSmallService) {
  CapacityPlan p = plan_capacity(parse_workload(small_service(), "w.json"));
  EXPECT_NEAR(p.prefill_nodes, 2, 1e-12);
  EXPECT_NEAR(p.decode_nodes, 2, 1e-12);
  EXPECT_NEAR(p.total_nodes, 4, 1e-12);
  EXPECT_NEAR(p.prefill_units, 0.5, 1e-12);
  EXPECT_NEAR(p.decode_units, 1, 1e-12);
  EXPECT_NEAR(p.charged_nodes, 4, 1e-12);
  EXPECT_NEAR(p.cost_usd_per_day, 4 * 8 * 2.5 * 24, 1e-9);  // 1,920
  // 0.864e9 * 0.1 + 0.864e9 * 0.5 + 1.728e8 * 2.0 per million = 86.4 + 432 + 345.6 = 864.
  EXPECT_NEAR(p.revenue.total_usd(), 864, 1e-9);
  EXPECT_NEAR(p.cost_profit_margin, (864.0 - 1920) / 1920, 1e-12);  // a loss: -55%
}

TEST(Capacity, ObservedNodesAreCharged) {
  json j = small_service();
  j["observed_average_nodes"] = 5;
  CapacityPlan p = plan_capacity(parse_workload(j, "w.json"));
  EXPECT_NEAR(p.total_nodes, 4, 1e-12);  // the need is unchanged
  EXPECT_NEAR(p.cost_usd_per_day, 5 * 8 * 2.5 * 24, 1e-9);
}

TEST(Capacity, HourlyLoadGivesPeakAndSavings) {
  json j = small_service();
  // Twelve quiet hours at weight 1 and twelve busy ones at 3: mean 2, so quiet hours need half the
  // average (2 nodes) and busy hours 1.5x (6 nodes). Holding 6 nodes all day costs 144
  // node-hours; following the load uses 12*2 + 12*6 = 96, saving 48.
  std::vector<double> hours(24, 1.0);
  for (int h = 8; h < 20; ++h) hours[h] = 3.0;
  j["hourly_load"] = hours;
  CapacityPlan p = plan_capacity(parse_workload(j, "w.json"));
  ASSERT_TRUE(p.has_hourly);
  ASSERT_EQ(p.hourly_nodes.size(), 24u);
  EXPECT_NEAR(p.hourly_nodes[0], 2, 1e-12);
  EXPECT_NEAR(p.hourly_nodes[12], 6, 1e-12);
  EXPECT_NEAR(p.peak_nodes, 6, 1e-12);
  EXPECT_NEAR(p.node_hours_saved_per_day, 48, 1e-9);
  json out = to_json(p);
  EXPECT_NEAR(out["peak_nodes"].get<double>(), 6, 1e-12);
  EXPECT_NEAR(out["node_hours_saved_per_day"].get<double>(), 48, 1e-9);
}

TEST(Capacity, JsonHasTheDocumentedKeys) {
  json out = to_json(plan_capacity(load_workload(kPublishedDay)));
  for (const char* k : {"prefill_nodes", "decode_nodes", "total_nodes", "prefill_units", "decode_units",
                        "cost_usd_per_day", "revenue_usd_per_day", "cost_profit_margin"})
    EXPECT_TRUE(out.contains(k)) << k;
  EXPECT_FALSE(out.contains("peak_nodes"));
  EXPECT_NEAR(out["cost_profit_margin"].get<double>(), 5.45, 0.01);
}

TEST(Capacity, TableShowsTheFigures) {
  Workload w = load_workload(kPublishedDay);
  std::string t = format_plan(w, plan_capacity(w));
  for (const char* s : {"95.5", "131.4", "226.9", "23.9", "7.3", "87072", "545.", "226.75"})
    EXPECT_NE(t.find(s), std::string::npos) << s << " missing from:\n" << t;
}

TEST(WorkloadFile, EveryMissingKeyIsNamed) {
  const json full = small_service();
  for (const auto& [key, value] : full.items()) {
    json j = full;
    j.erase(key);
    expect_error(j, {"w.json", "missing key '" + key + "'"});
  }
}

TEST(WorkloadFile, RejectsZeroAndNegativeRates) {
  for (const char* key : {"prefill_tokens_per_s_per_node", "decode_tokens_per_s_per_node", "gpus_per_node",
                          "gpu_hour_usd", "prefill_nodes_per_unit", "decode_nodes_per_unit", "input_tokens_per_day"}) {
    json j = small_service();
    j[key] = 0;
    expect_error(j, {key, "greater than zero"});
    j[key] = -5;
    expect_error(j, {key, "greater than zero"});
  }
  for (const char* key : {"price_per_m_output", "output_tokens_per_day", "cached_input_tokens_per_day"}) {
    json j = small_service();
    j[key] = -1;
    expect_error(j, {key, "must not be negative"});
  }
}

TEST(WorkloadFile, RejectsCachedAboveInput) {
  json j = small_service();
  j["cached_input_tokens_per_day"] = 2e9;
  expect_error(j, {"cached_input_tokens_per_day", "exceeds input_tokens_per_day"});
}

TEST(WorkloadFile, RejectsWrongTypesUnknownKeysAndBadHours) {
  json j = small_service();
  j["gpu_hour_usd"] = "two";
  expect_error(j, {"gpu_hour_usd", "must be a number"});
  j = small_service();
  j["input_token_per_day"] = 1;  // typo
  expect_error(j, {"unknown key 'input_token_per_day'"});
  j = small_service();
  j["hourly_load"] = std::vector<double>(23, 1.0);
  expect_error(j, {"hourly_load", "24"});
  j["hourly_load"] = std::vector<double>(24, 0.0);
  expect_error(j, {"hourly_load", "positive"});
  std::vector<double> hours(24, 1.0);
  hours[5] = -1;
  j["hourly_load"] = hours;
  expect_error(j, {"hourly_load", "[5]"});
  j = small_service();
  j["observed_average_nodes"] = 0;
  expect_error(j, {"observed_average_nodes", "greater than zero"});
  expect_error(json::array({1, 2}), {"JSON object"});
}

TEST(WorkloadFile, UnreadableFilesSaySo) {
  EXPECT_THROW(load_workload("/nonexistent/w.json"), Error);
  std::string path = testing::TempDir() + "/broken_workload.json";
  std::ofstream(path) << "{ \"input_tokens_per_day\": ";
  try {
    load_workload(path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace dsinfer::plan
