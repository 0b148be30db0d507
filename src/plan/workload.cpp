#include "plan/workload.h"


#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "base/read_file.h"
#include "plan/json_fields.h"

namespace dsinfer::plan {

Workload parse_workload(const nlohmann::json& j, const std::string& origin) {
  FieldReader r(j, origin);
  Workload w;
  w.input_tokens_per_day = r.positive("input_tokens_per_day");
  w.cached_input_tokens_per_day = r.non_negative("cached_input_tokens_per_day");
  if (w.cached_input_tokens_per_day > w.input_tokens_per_day)
    fail(r.where("cached_input_tokens_per_day"), " (", w.cached_input_tokens_per_day,
         ") exceeds input_tokens_per_day (", w.input_tokens_per_day, "); cache hits are part of the input");
  w.output_tokens_per_day = r.non_negative("output_tokens_per_day");
  w.prefill_tokens_per_s_per_node = r.positive("prefill_tokens_per_s_per_node");
  w.decode_tokens_per_s_per_node = r.positive("decode_tokens_per_s_per_node");
  w.gpus_per_node = r.positive("gpus_per_node");
  w.gpu_hour_usd = r.positive("gpu_hour_usd");
  w.prices.input_cache_hit = r.non_negative("price_per_m_input_cache_hit");
  w.prices.input_cache_miss = r.non_negative("price_per_m_input_cache_miss");
  w.prices.output = r.non_negative("price_per_m_output");
  w.prefill_nodes_per_unit = r.positive("prefill_nodes_per_unit");
  w.decode_nodes_per_unit = r.positive("decode_nodes_per_unit");
  if (r.optional_number("observed_average_nodes")) w.observed_average_nodes = r.positive("observed_average_nodes");
  if (const nlohmann::json* hours = r.optional_array("hourly_load")) {
    if (hours->size() != kHoursPerDay)
      fail(r.where("hourly_load"), " must list ", kHoursPerDay, " hourly weights, got ", hours->size());
    double sum = 0;
    for (size_t h = 0; h < hours->size(); ++h) {
      const nlohmann::json& v = (*hours)[h];
      if (!v.is_number() || v.get<double>() < 0)
        fail(r.where("hourly_load"), "[", h, "] must be a non-negative number, got ", v.dump());
      w.hourly_load.push_back(v.get<double>());
      sum += w.hourly_load.back();
    }
    if (!(sum > 0)) fail(r.where("hourly_load"), " must have at least one positive weight");
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
