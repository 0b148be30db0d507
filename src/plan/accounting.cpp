#include "plan/accounting.h"

#include "base/error.h"

namespace dsinfer::plan {

namespace {
constexpr double kPerMillion = 1e-6;
constexpr double kSecondsPerHour = 3600;
}  // namespace

RevenueBreakdown revenue_usd(const Prices& prices, const TokenCounts& tokens) {
  RevenueBreakdown r;
  r.input_cache_hit_usd = tokens.input_cache_hit * prices.input_cache_hit * kPerMillion;
  r.input_cache_miss_usd = tokens.input_cache_miss * prices.input_cache_miss * kPerMillion;
  r.output_usd = tokens.output * prices.output * kPerMillion;
  return r;
}

double gpu_cost_usd(double gpus, double gpu_hour_usd, double hours) { return gpus * gpu_hour_usd * hours; }

double cost_profit_margin(double revenue, double cost) {
  check(cost > 0, "cost-profit margin needs a positive cost, got ", cost);
  return (revenue - cost) / cost;
}

double usd_per_million_tokens(double gpu_hour_usd, double tokens_per_s_per_gpu) {
  check(tokens_per_s_per_gpu > 0, "cost per token needs a positive throughput, got ", tokens_per_s_per_gpu);
  return gpu_hour_usd / (tokens_per_s_per_gpu * kSecondsPerHour) / kPerMillion;
}

}  // namespace dsinfer::plan
