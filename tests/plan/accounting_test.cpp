#include "plan/accounting.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace dsinfer::plan {
namespace {

TEST(Accounting, RevenueIsPricePerMillionTimesTokens) {
  Prices p{0.14, 0.55, 2.19};
  TokenCounts t{2e6, 1e6, 3e6};
  RevenueBreakdown r = revenue_usd(p, t);
  EXPECT_NEAR(r.input_cache_hit_usd, 0.28, 1e-12);
  EXPECT_NEAR(r.input_cache_miss_usd, 0.55, 1e-12);
  EXPECT_NEAR(r.output_usd, 6.57, 1e-12);
  EXPECT_NEAR(r.total_usd(), 7.40, 1e-12);
  EXPECT_DOUBLE_EQ(t.input(), 3e6);
}

TEST(Accounting, CostAndMargin) {
  EXPECT_DOUBLE_EQ(gpu_cost_usd(16, 2.0, 1.5), 48.0);  // 16 GPUs, $2/h, 90 minutes
  EXPECT_DOUBLE_EQ(cost_profit_margin(150, 100), 0.5);
  EXPECT_DOUBLE_EQ(cost_profit_margin(50, 100), -0.5);
  EXPECT_THROW(cost_profit_margin(10, 0), Error);
}

TEST(Accounting, CostPerMillionTokens) {
  // One GPU at $3.60/h serving 1,000 tokens/s makes 3.6M tokens an hour: $1 per million.
  EXPECT_NEAR(usd_per_million_tokens(3.6, 1000), 1.0, 1e-12);
  EXPECT_THROW(usd_per_million_tokens(2, 0), Error);
}

}  // namespace
}  // namespace dsinfer::plan
