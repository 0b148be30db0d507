// Live cost accounting for `dsinfer serve` (issue 6, item 4): the server's cumulative cache-hit,
// cache-miss and output tokens priced with the same formulas as `dsinfer plan`
// (plan/accounting.h), against the GPU cost of the time since start. Lives in the app because it
// joins the engine's metrics (engine layer) with the planner's formulas (plan), which know
// nothing of each other.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/metrics.h"
#include "plan/accounting.h"
#include "serve/server.h"

namespace dsinfer::app {

struct AccountingConfig {
  // DeepSeek-R1's published API prices (USD per million tokens) and DeepSeek's own cost
  // assumption of $2 per H800-hour, as in its 2025-02-28 accounting.
  plan::Prices prices{0.14, 0.55, 2.19};
  double gpu_hour_usd = 2.0;
  double gpus = 1;
};

class LiveAccounting {
 public:
  LiveAccounting(AccountingConfig config, double start_seconds);

  // Counts are billed when a request completes: tokens of requests still running are not in them.
  nlohmann::json report(const engine::EngineMetrics& m, double now_seconds) const;
  std::string prometheus(const engine::EngineMetrics& m, double now_seconds) const;
  serve::AccountingHooks hooks() const;  // bound to the wall clock

 private:
  AccountingConfig config_;
  double start_;
};

}  // namespace dsinfer::app
