#include "kernels/routing.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace dsinfer::kernels {

namespace {

// Indices of the k largest values, ordered by value descending then index ascending.
void top_indices(const float* v, int64_t n, int64_t k, std::vector<int32_t>& order) {
  order.resize(size_t(n));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  order.resize(size_t(k));
}

}  // namespace

void route_topk(const float* logits, int64_t m, const RoutingParams& p, int32_t* ids, float* weights) {
  RoutingScratch scratch;
  route_topk(logits, m, p, ids, weights, scratch);
}

void route_topk(const float* logits, int64_t m, const RoutingParams& p, int32_t* ids, float* weights,
                RoutingScratch& s) {
  const int64_t e = p.num_experts, per_group = e / p.num_groups;
  s.scores.resize(size_t(e));
  s.choice.resize(size_t(e));
  s.group_score.resize(size_t(p.num_groups));
  s.keep.resize(size_t(p.num_groups));
  float* scores = s.scores.data();
  float* choice = s.choice.data();
  float* group_score = s.group_score.data();
  std::vector<int32_t>& order = s.order;
  std::vector<int32_t>& groups = s.groups;
  for (int64_t t = 0; t < m; ++t) {
    const float* l = logits + t * e;
    if (p.scoring == ScoringFunc::kSoftmax) {
      float mx = *std::max_element(l, l + e), sum = 0;
      for (int64_t i = 0; i < e; ++i) sum += scores[i] = std::exp(l[i] - mx);
      for (int64_t i = 0; i < e; ++i) scores[i] /= sum;
    } else {
      for (int64_t i = 0; i < e; ++i) scores[i] = 1.0f / (1.0f + std::exp(-l[i]));
    }
    for (int64_t i = 0; i < e; ++i) choice[i] = scores[i] + (p.method == TopkMethod::kNoauxTc && p.bias ? p.bias[i] : 0.0f);

    if (p.method != TopkMethod::kGreedy && p.num_groups > 1) {
      for (int64_t g = 0; g < p.num_groups; ++g) {
        const float* c = choice + g * per_group;
        if (p.method == TopkMethod::kGroupLimitedGreedy) {
          group_score[g] = *std::max_element(c, c + per_group);
        } else {
          top_indices(c, per_group, 2, order);
          group_score[g] = c[order[0]] + c[order[1]];
        }
      }
      top_indices(group_score, p.num_groups, p.topk_groups, groups);
      std::fill(s.keep.begin(), s.keep.end(), uint8_t(0));
      for (int32_t g : groups) s.keep[size_t(g)] = 1;
      for (int64_t i = 0; i < e; ++i)
        if (!s.keep[size_t(i / per_group)]) choice[i] = -std::numeric_limits<float>::infinity();
    }
    top_indices(choice, e, p.top_k, order);
    float sum = 0;
    for (int k = 0; k < p.top_k; ++k) {
      ids[t * p.top_k + k] = order[k];
      sum += weights[t * p.top_k + k] = scores[order[k]];
    }
    // DeepSeek adds 1e-20 to the denominator so an all-zero softmax tail cannot divide by zero.
    bool normalized = p.normalize && p.top_k > 1;
    float factor = normalized ? 1.0f / (sum + 1e-20f) : 1.0f;
    if (!normalized || p.scale_normalized) factor *= p.scaling;
    for (int k = 0; k < p.top_k; ++k) weights[t * p.top_k + k] *= factor;
  }
}

}  // namespace dsinfer::kernels
