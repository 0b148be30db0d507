#include "plan/workload.h"


#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "base/read_file.h"
#include "base/json_fields.h"

namespace dsinfer::plan {

Workload parse_workload(const nlohmann::json& j, const std::string& origin) {
  constexpr NumberRange kPositive = NumberRange::positive(), kNonNegative = NumberRange::non_negative();
  FieldReader r(j, origin);
  Workload w;
  w.input_tokens_per_day = r.number("input_tokens_per_day", kPositive);
  w.cached_input_tokens_per_day = r.number("cached_input_tokens_per_day", kNonNegative);
  if (w.cached_input_tokens_per_day > w.input_tokens_per_day)
    r.fail("cached_input_tokens_per_day", "(", w.cached_input_tokens_per_day,
           ") exceeds input_tokens_per_day (", w.input_tokens_per_day, "); cache hits are part of the input");
  w.output_tokens_per_day = r.number("output_tokens_per_day", kNonNegative);
  w.prefill_tokens_per_s_per_node = r.number("prefill_tokens_per_s_per_node", kPositive);
  w.decode_tokens_per_s_per_node = r.number("decode_tokens_per_s_per_node", kPositive);
  w.gpus_per_node = r.number("gpus_per_node", kPositive);
  w.gpu_hour_usd = r.number("gpu_hour_usd", kPositive);
  w.prices.input_cache_hit = r.number("price_per_m_input_cache_hit", kNonNegative);
  w.prices.input_cache_miss = r.number("price_per_m_input_cache_miss", kNonNegative);
  w.prices.output = r.number("price_per_m_output", kNonNegative);
  w.prefill_nodes_per_unit = r.number("prefill_nodes_per_unit", kPositive);
  w.decode_nodes_per_unit = r.number("decode_nodes_per_unit", kPositive);
  w.observed_average_nodes = r.optional_number("observed_average_nodes", kPositive);
  if (r.has("hourly_load")) {
    w.hourly_load = r.numbers("hourly_load", kNonNegative);
    if (w.hourly_load.size() != kHoursPerDay)
      r.fail("hourly_load", "must list ", kHoursPerDay, " hourly weights, got ", w.hourly_load.size());
    double sum = 0;
    for (double h : w.hourly_load) sum += h;
    if (!(sum > 0)) r.fail("hourly_load", "must have at least one positive weight");
  }
  r.allow("note");
  r.allow("sources");
  r.finish();
  return w;
}

Workload load_workload(const std::string& path) {
  // A regular file only (a FIFO would block), nesting-limited like every JSON dsinfer reads.
  return parse_workload(parse_json(read_regular_file(path, "workload file"), path), path);
}

}  // namespace dsinfer::plan
