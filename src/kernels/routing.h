// MoE routing top-k with DeepSeek's three gate policies:
//  - greedy: top-k of all expert scores (DeepSeek-V2-Lite);
//  - group-limited greedy: keep the topk_group groups whose best expert scores highest, then
//    top-k inside them (DeepSeek-V2);
//  - noaux_tc: selection uses score + e_score_correction_bias, groups ranked by the sum of their
//    two best biased scores; the chosen experts are weighted by their unbiased scores (V3).
// Scores are softmax or sigmoid of the gate logits. Weights are optionally normalised to sum 1
// and then multiplied by routed_scaling_factor.
#pragma once

#include <cstdint>
#include <vector>

namespace dsinfer::kernels {

// The gate policies as config.json names them (scoring_func, topk_method); model/config.h parses
// into these same enums, so there is one definition and no translation.
enum class ScoringFunc { kSoftmax, kSigmoid };
enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };

struct RoutingParams {
  int64_t num_experts = 0;
  int top_k = 0;
  int64_t num_groups = 1, topk_groups = 1;
  ScoringFunc scoring = ScoringFunc::kSoftmax;
  TopkMethod method = TopkMethod::kGreedy;
  bool normalize = false;
  float scaling = 1.0f;
  // DeepSeek-V3 scales after normalising; DeepSeek-V2's gate scales only weights it did not
  // normalise (the two agree for every published config, which never pairs V2 with both).
  bool scale_normalized = true;
  const float* bias = nullptr;  // [num_experts], noaux_tc only
};

// Working memory of route_topk, kept by the caller so a forward step allocates nothing.
struct RoutingScratch {
  std::vector<float> scores, choice, group_score;
  std::vector<int32_t> order, groups;
  std::vector<uint8_t> keep;
};

// logits [m, num_experts] -> ids [m, top_k], weights [m, top_k]. Ties go to the lower expert id.
void route_topk(const float* logits, int64_t m, const RoutingParams& p, int32_t* ids, float* weights,
                RoutingScratch& scratch);
// With scratch of its own, for one-off use.
void route_topk(const float* logits, int64_t m, const RoutingParams& p, int32_t* ids, float* weights);

}  // namespace dsinfer::kernels
