#include "parallel/online_eplb.h"

#include <gtest/gtest.h>

#include <numeric>

#include "model/presets.h"

namespace dsinfer::parallel {
namespace {

// tiny-v3: 16 routed experts; a placement of 2 ranks from one slot row per MoE layer.
ExpertPlacement placed(const std::vector<int32_t>& row) {
  const model::ModelConfig cfg = model::preset_config("tiny-v3");
  std::vector<std::vector<int32_t>> rows;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l)
    if (cfg.is_moe_layer(l)) rows.push_back(row);
  return ExpertPlacement::from_phy2log(rows, cfg, 2, "test");
}

int moves(const std::vector<int32_t>& row, const ExpertPlacement& current, int layer) {
  int n = 0;
  for (int r = 0; r < 2; ++r) {
    const std::vector<int32_t> held = current.local_experts(layer, r);
    for (size_t j = 0; j < 8; ++j)
      n += std::find(held.begin(), held.end(), row[size_t(r) * 8 + j]) == held.end();
  }
  return n;
}

TEST(KeepInPlace, ASwappedPlanMovesNothing) {
  std::vector<int32_t> contiguous(16), swapped(16);
  std::iota(contiguous.begin(), contiguous.end(), 0);
  for (int i = 0; i < 16; ++i) swapped[size_t(i)] = (i + 8) % 16;  // the same bins, numbered the other way
  const ExpertPlacement current = placed(contiguous), plan = placed(swapped);
  const int layer = int(model::preset_config("tiny-v3").first_k_dense_replace);
  EXPECT_EQ(moves(swapped, current, layer), 16);
  const std::vector<int32_t> kept = keep_in_place(plan, current, layer);
  EXPECT_EQ(kept, contiguous);
  EXPECT_EQ(moves(kept, current, layer), 0);
}

TEST(KeepInPlace, EachBinGoesWhereMostOfItIs) {
  std::vector<int32_t> contiguous(16);
  std::iota(contiguous.begin(), contiguous.end(), 0);
  // Bin 0 holds six of rank 1's experts, bin 1 six of rank 0's: they trade places, and only the
  // two experts that really change rank move each way.
  const std::vector<int32_t> plan_row = {8, 9, 10, 11, 12, 13, 0, 1, 2, 3, 4, 5, 6, 7, 14, 15};
  const ExpertPlacement current = placed(contiguous), plan = placed(plan_row);
  const int layer = int(model::preset_config("tiny-v3").first_k_dense_replace);
  EXPECT_EQ(moves(plan_row, current, layer), 12);
  const std::vector<int32_t> kept = keep_in_place(plan, current, layer);
  EXPECT_EQ(moves(kept, current, layer), 4);
  // The same bins (the balance is the plan's): each rank's set is one of the plan's sets.
  const std::vector<int32_t> bin0(kept.begin(), kept.begin() + 8), bin1(kept.begin() + 8, kept.end());
  EXPECT_EQ(bin0, std::vector<int32_t>(plan_row.begin() + 8, plan_row.end()));
  EXPECT_EQ(bin1, std::vector<int32_t>(plan_row.begin(), plan_row.begin() + 8));
}

}  // namespace
}  // namespace dsinfer::parallel
