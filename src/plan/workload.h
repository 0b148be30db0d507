// Workload: one day of traffic of an inference service plus the deployment it runs on, as read
// from the JSON file that `dsinfer plan --workload` takes. All validation happens here, with
// messages naming the key; CapacityPlan can then assume the numbers make sense.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plan/accounting.h"

namespace dsinfer::plan {

struct Workload {
  double input_tokens_per_day = 0;         // cache hits included
  double cached_input_tokens_per_day = 0;  // served from the context cache
  double output_tokens_per_day = 0;
  double prefill_tokens_per_s_per_node = 0;  // input tokens, cache hits included
  double decode_tokens_per_s_per_node = 0;   // output tokens
  double gpus_per_node = 0;
  double gpu_hour_usd = 0;
  Prices prices;                         // USD per million tokens
  double prefill_nodes_per_unit = 0;     // a deployment unit: the smallest group that serves alone
  double decode_nodes_per_unit = 0;
  std::optional<double> observed_average_nodes;  // cost is charged on it when present
  std::vector<double> hourly_load;               // 24 relative weights, or empty

  TokenCounts tokens() const {
    return {cached_input_tokens_per_day, input_tokens_per_day - cached_input_tokens_per_day,
            output_tokens_per_day};
  }
};

constexpr int kHoursPerDay = 24;

// Throws dsinfer::Error naming the key on a missing, mistyped, unknown or out-of-range value.
Workload parse_workload(const nlohmann::json& j, const std::string& origin);
Workload load_workload(const std::string& path);

}  // namespace dsinfer::plan
