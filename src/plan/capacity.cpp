#include "plan/capacity.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include <nlohmann/json.hpp>

namespace dsinfer::plan {

namespace {
constexpr double kSecondsPerDay = 86400;
}  // namespace

CapacityPlan plan_capacity(const Workload& w) {
  CapacityPlan p;
  // A node busy all day serves rate * 86400 tokens; the day's tokens divided by that is the
  // average number of busy nodes.
  p.prefill_nodes = w.input_tokens_per_day / (w.prefill_tokens_per_s_per_node * kSecondsPerDay);
  p.decode_nodes = w.output_tokens_per_day / (w.decode_tokens_per_s_per_node * kSecondsPerDay);
  p.total_nodes = p.prefill_nodes + p.decode_nodes;
  p.prefill_units = p.prefill_nodes / w.prefill_nodes_per_unit;
  p.decode_units = p.decode_nodes / w.decode_nodes_per_unit;
  p.charged_nodes = w.observed_average_nodes.value_or(p.total_nodes);
  p.cost_usd_per_day = gpu_cost_usd(p.charged_nodes * w.gpus_per_node, w.gpu_hour_usd, kHoursPerDay);
  p.revenue = revenue_usd(w.prices, w.tokens());
  p.cost_profit_margin = cost_profit_margin(p.revenue.total_usd(), p.cost_usd_per_day);

  if (!w.hourly_load.empty()) {
    p.has_hourly = true;
    // Traffic in hour h is proportional to its weight; nodes follow traffic.
    double mean = std::accumulate(w.hourly_load.begin(), w.hourly_load.end(), 0.0) / kHoursPerDay;
    for (double weight : w.hourly_load) p.hourly_nodes.push_back(p.total_nodes * weight / mean);
    p.peak_nodes = *std::max_element(p.hourly_nodes.begin(), p.hourly_nodes.end());
    double used = std::accumulate(p.hourly_nodes.begin(), p.hourly_nodes.end(), 0.0);
    p.node_hours_saved_per_day = p.peak_nodes * kHoursPerDay - used;
  }
  return p;
}

nlohmann::json to_json(const CapacityPlan& p) {
  nlohmann::json j = {
      {"prefill_nodes", p.prefill_nodes},
      {"decode_nodes", p.decode_nodes},
      {"total_nodes", p.total_nodes},
      {"prefill_units", p.prefill_units},
      {"decode_units", p.decode_units},
      {"charged_nodes", p.charged_nodes},
      {"cost_usd_per_day", p.cost_usd_per_day},
      {"revenue_usd_per_day", p.revenue.total_usd()},
      {"revenue_breakdown_usd_per_day",
       {{"input_cache_hit", p.revenue.input_cache_hit_usd},
        {"input_cache_miss", p.revenue.input_cache_miss_usd},
        {"output", p.revenue.output_usd}}},
      {"cost_profit_margin", p.cost_profit_margin},
  };
  if (p.has_hourly) {
    j["peak_nodes"] = p.peak_nodes;
    j["node_hours_saved_per_day"] = p.node_hours_saved_per_day;
    j["hourly_nodes"] = p.hourly_nodes;
  }
  return j;
}

std::string format_plan(const Workload& w, const CapacityPlan& p) {
  std::string out;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  add("%-34s %16s\n", "", "per day");
  add("%-34s %16.3g\n", "input tokens", w.input_tokens_per_day);
  add("%-34s %16.3g  (%.1f%% of input)\n", "  served from the context cache", w.cached_input_tokens_per_day,
      100 * w.cached_input_tokens_per_day / w.input_tokens_per_day);
  add("%-34s %16.3g\n\n", "output tokens", w.output_tokens_per_day);
  add("%-34s %10s %12s %10s\n", "capacity", "nodes", "tokens/s/node", "units");
  add("%-34s %10.1f %12.0f %10.1f  (of %g nodes)\n", "prefill", p.prefill_nodes, w.prefill_tokens_per_s_per_node,
      p.prefill_units, w.prefill_nodes_per_unit);
  add("%-34s %10.1f %12.0f %10.1f  (of %g nodes)\n", "decode", p.decode_nodes, w.decode_tokens_per_s_per_node,
      p.decode_units, w.decode_nodes_per_unit);
  add("%-34s %10.1f\n", "total", p.total_nodes);
  if (w.observed_average_nodes) add("%-34s %10.2f\n", "observed average (charged)", *w.observed_average_nodes);
  if (p.has_hourly) {
    add("%-34s %10.1f\n", "peak hour", p.peak_nodes);
    add("%-34s %10.1f\n", "node-hours saved by scaling down", p.node_hours_saved_per_day);
  }
  add("\n%-34s %16s\n", "money", "USD per day");
  add("%-34s %16.0f  (%.2f nodes x %g GPUs x $%g/h x 24 h)\n", "cost", p.cost_usd_per_day, p.charged_nodes,
      w.gpus_per_node, w.gpu_hour_usd);
  add("%-34s %16.0f\n", "revenue", p.revenue.total_usd());
  add("%-34s %16.0f  ($%g per M)\n", "  input, cache hit", p.revenue.input_cache_hit_usd, w.prices.input_cache_hit);
  add("%-34s %16.0f  ($%g per M)\n", "  input, cache miss", p.revenue.input_cache_miss_usd, w.prices.input_cache_miss);
  add("%-34s %16.0f  ($%g per M)\n", "  output", p.revenue.output_usd, w.prices.output);
  add("%-34s %15.1f%%\n", "cost-profit margin", 100 * p.cost_profit_margin);
  return out;
}

}  // namespace dsinfer::plan
