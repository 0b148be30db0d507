// Reports of `dsinfer simulate`: a readable table of where one step's time goes per phase, and
// the same numbers as JSON for scripts.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plan/simulator.h"

namespace dsinfer::plan {

nlohmann::json to_json(const PhaseResult& r);
nlohmann::json to_json(const std::vector<DecodeCurvePoint>& curve);
nlohmann::json to_json(const PrefillOptions& o);
nlohmann::json to_json(const DecodeOptions& o);

std::string format_prefill(const PhaseResult& r, const PrefillOptions& opt, double gpu_hour_usd);
std::string format_decode(const PhaseResult& r, const DecodeOptions& opt, double gpu_hour_usd);

}  // namespace dsinfer::plan
