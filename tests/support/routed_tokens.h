// Synthetic MoE inputs shared by the expert-parallel tests and bench/ep_bench: T tokens of
// normal activations, each routed to top_k distinct experts drawn uniformly, with positive
// weights. Deterministic per seed.
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
  std::vector<int32_t> experts(static_cast<size_t>(E));
  for (int64_t i = 0; i < T; ++i) {
    std::iota(experts.begin(), experts.end(), 0);
    std::shuffle(experts.begin(), experts.end(), rng);
    for (int64_t k = 0; k < K; ++k) {
      t.ids.push_back(experts[size_t(k)]);
      t.w.push_back(weight(rng));
    }
  }
  return t;
}

}  // namespace dsinfer::testing
