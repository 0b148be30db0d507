// dsinfer plan: nodes, deployment units, cost, revenue and margin of a day of traffic.
#include <iostream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "plan/capacity.h"
#include "plan/workload.h"

namespace dsinfer::app {
namespace {

int run_plan(Args& args) {
  const std::string path = args.require("workload");
  const bool json = args.flag("json");
  args.finish();
  plan::Workload w = plan::load_workload(path);
  plan::CapacityPlan p = plan::plan_capacity(w);
  if (json) std::cout << plan::to_json(p).dump(2) << "\n";
  else std::cout << plan::format_plan(w, p);
  return 0;
}

const Registration kRegistration{{
    "plan",
    "capacity, cost, revenue and cost-profit margin of a day of traffic",
    "--workload FILE.json [--json]\n"
    "FILE.json keys: input_tokens_per_day, cached_input_tokens_per_day, output_tokens_per_day,\n"
    "  prefill_tokens_per_s_per_node, decode_tokens_per_s_per_node, gpus_per_node, gpu_hour_usd,\n"
    "  price_per_m_input_cache_hit, price_per_m_input_cache_miss, price_per_m_output,\n"
    "  prefill_nodes_per_unit, decode_nodes_per_unit, optional observed_average_nodes and hourly_load (24 weights).\n"
    "Example: docs/examples/deepseek-2025-02-28.json (DeepSeek's published day).",
    run_plan,
}};

}  // namespace
}  // namespace dsinfer::app
