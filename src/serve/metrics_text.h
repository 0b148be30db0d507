// GET /metrics: the engine's and the HTTP front end's numbers in Prometheus text exposition
// format 0.0.4 (# HELP / # TYPE lines, counters ending in _total, histograms with cumulative
// le buckets, _sum and _count).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "engine/metrics.h"
#include "serve/http_server.h"

namespace dsinfer::serve {

struct HttpCounters {
  std::map<std::pair<std::string, int>, uint64_t> requests;  // (endpoint, status) -> count
  http::ConnectionStats connections;
};

std::string render_metrics(const engine::EngineMetrics& m, const HttpCounters& http, const std::string& model_name);

}  // namespace dsinfer::serve
