// Synthetic MoE inputs shared by the expert-parallel tests and bench/ep_bench: T tokens of
// normal activations, each routed to top_k distinct experts with positive weights, the way the
// config's gate limits them: with group-limited routing (V3: 8 groups, 4 chosen) the experts are
// drawn from topk_group groups drawn first, else from all of them, uniformly. (Uniform routing
// over all experts reaches more ranks per token than V3's gate can, which is what
// plan/comm_model.cpp counts.) Deterministic per seed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "model/config.h"

namespace dsinfer::testing {

struct RoutedTokens {
  std::vector<float> x;      // [T, hidden]
  std::vector<int32_t> ids;  // [T, top_k]
  std::vector<float> w;      // [T, top_k]
  int64_t T = 0;
};

inline RoutedTokens random_routed_tokens(const model::ModelConfig& cfg, int64_t T, uint64_t seed) {
  RoutedTokens t;
  t.T = T;
  const int64_t D = cfg.hidden_size, K = cfg.num_experts_per_tok, E = cfg.n_routed_experts;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> weight(0.05f, 1.0f);
  t.x.resize(static_cast<size_t>(T * D));
  for (float& v : t.x) v = normal(rng);
  const bool grouped = cfg.topk_method != model::TopkMethod::kGreedy && cfg.n_group > 1 &&
                       cfg.topk_group < cfg.n_group && E % cfg.n_group == 0 &&
                       K <= cfg.topk_group * (E / cfg.n_group);
  const int64_t G = grouped ? cfg.n_group : 1, per_group = E / G, chosen = grouped ? cfg.topk_group : 1;
  std::vector<int32_t> groups(static_cast<size_t>(G)), experts;
  for (int64_t i = 0; i < T; ++i) {
    std::iota(groups.begin(), groups.end(), 0);
    std::shuffle(groups.begin(), groups.end(), rng);
    experts.clear();
    for (int64_t g = 0; g < chosen; ++g)
      for (int64_t e = 0; e < per_group; ++e) experts.push_back(int32_t(groups[size_t(g)] * per_group + e));
    std::shuffle(experts.begin(), experts.end(), rng);
    for (int64_t k = 0; k < K; ++k) {
      t.ids.push_back(experts[size_t(k)]);
      t.w.push_back(weight(rng));
    }
  }
  return t;
}

}  // namespace dsinfer::testing
