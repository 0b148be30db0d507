// Cost accounting for an inference service: revenue from token counts at per-million-token
// prices, GPU cost from GPU-hours, and DeepSeek's "cost-profit margin" (revenue - cost) / cost.
// One set of formulas shared by `dsinfer plan` (a day of forecast traffic) and, later, the
// server's live accounting (cumulative counters since start), so both always agree.
#pragma once

namespace dsinfer::plan {

// USD per million tokens, by kind of token.
struct Prices {
  double input_cache_hit = 0;
  double input_cache_miss = 0;
  double output = 0;
};

// Token counts over some period. Cache hits are input tokens whose KV came from the context
// cache; misses are input tokens that were computed.
struct TokenCounts {
  double input_cache_hit = 0;
  double input_cache_miss = 0;
  double output = 0;
  double input() const { return input_cache_hit + input_cache_miss; }
};

struct RevenueBreakdown {
  double input_cache_hit_usd = 0;
  double input_cache_miss_usd = 0;
  double output_usd = 0;
  double total_usd() const { return input_cache_hit_usd + input_cache_miss_usd + output_usd; }
};

RevenueBreakdown revenue_usd(const Prices& prices, const TokenCounts& tokens);

// Cost of renting `gpus` GPUs for `hours` at `gpu_hour_usd` each.
double gpu_cost_usd(double gpus, double gpu_hour_usd, double hours);

// (revenue - cost) / cost: 5.45 means 545%. Cost must be positive.
double cost_profit_margin(double revenue_usd, double cost_usd);

// Serving cost of one million tokens at a sustained rate of `tokens_per_s_per_gpu`.
double usd_per_million_tokens(double gpu_hour_usd, double tokens_per_s_per_gpu);

}  // namespace dsinfer::plan
