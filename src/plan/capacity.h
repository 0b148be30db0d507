// Capacity plan: how many prefill and decode nodes a day of traffic needs at given per-node
// throughputs, how many deployment units that is, and what it costs and earns. This is the
// arithmetic of DeepSeek's published day (608B input tokens at 73.7k tokens/s per node = 95.5
// prefill nodes, and so on), written once so users can redo it for their own service.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plan/accounting.h"
#include "plan/workload.h"

namespace dsinfer::plan {

struct CapacityPlan {
  double prefill_nodes = 0;  // busy nodes on average over the day
  double decode_nodes = 0;
  double total_nodes = 0;
  double prefill_units = 0;
  double decode_units = 0;
  double charged_nodes = 0;  // observed_average_nodes when given, else total_nodes
  double cost_usd_per_day = 0;
  RevenueBreakdown revenue;
  double cost_profit_margin = 0;
  // Only with an hourly load profile.
  bool has_hourly = false;
  std::vector<double> hourly_nodes;  // nodes needed in each hour
  double peak_nodes = 0;
  double node_hours_saved_per_day = 0;  // versus holding peak_nodes all day
};

CapacityPlan plan_capacity(const Workload& w);

nlohmann::json to_json(const CapacityPlan& p);
std::string format_plan(const Workload& w, const CapacityPlan& p);

}  // namespace dsinfer::plan
