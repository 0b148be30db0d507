// The MTP module's MoE layer in an expert placement: placed after the main layers, the same
// physical slots, slot s holding expert s mod n_routed whatever plan places the main layers, so
// online EPLB never has to move it; EPLB's load figures cover the main layers only.
#include "parallel/expert_placement.h"

#include <gtest/gtest.h>

#include "model/presets.h"

namespace dsinfer::parallel {
namespace {

TEST(ExpertPlacement, TheMtpLayerFollowsTheMainLayersWithAFixedPlacement) {
  const model::ModelConfig cfg = model::preset_config("tiny-v3");
  ASSERT_EQ(cfg.num_nextn_predict_layers, 1);
  const int mtp = int(cfg.num_hidden_layers), n = int(cfg.n_routed_experts);

  const ExpertPlacement plain = ExpertPlacement::contiguous(cfg, 2);
  EXPECT_EQ(plain.num_layers(), mtp + 1);
  ASSERT_TRUE(plain.is_moe_layer(mtp));
  for (int s = 0; s < plain.num_slots(); ++s) EXPECT_EQ(plain.logical(mtp, s), s);

  // A plan with two redundant slots and a load that makes expert 0 hot: the main layers change,
  // the MTP layer holds every expert once and the first two again.
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) moe_layers += cfg.is_moe_layer(l);
  ExpertLoad load(int(moe_layers), n);
  for (int l = 0; l < load.num_layers; ++l)
    for (int e = 0; e < n; ++e) load.values[size_t(l * n + e)] = e == 0 ? 100.0 : 1.0;
  const ExpertPlacement planned = ExpertPlacement::from_load(load, cfg, 2, n + 2, EplbPolicy::kDeepSeek);
  EXPECT_EQ(planned.num_layers(), mtp + 1);
  for (int s = 0; s < planned.num_slots(); ++s) EXPECT_EQ(planned.logical(mtp, s), s % n);
  // Every replica of an expert computes it: tokens of expert 0 go to both of its slots.
  EXPECT_NE(planned.slot_for(mtp, 0, 0), planned.slot_for(mtp, 0, 1));
  // The load has the main layers' rows only, and the balance figure reads just those.
  EXPECT_GE(planned.rank_max_over_mean(load), 1.0);
  EXPECT_LT(planned.rank_max_over_mean(load), plain.rank_max_over_mean(load));
}

}  // namespace
}  // namespace dsinfer::parallel
