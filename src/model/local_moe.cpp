#include "model/local_moe.h"

#include <cstring>

#include "model/mlp.h"

namespace dsinfer::model {

void LocalMoe::run(const MoeInput& in, float* out) {
  const MoeWeights& moe = weights_.layers[size_t(in.layer)].moe;
  const int64_t hidden = moe.experts[0].down.rows, K = in.top_k, T = in.num_tokens;
  const int64_t num_experts = int64_t(moe.experts.size());
  // Bucket the (token, slot) pairs by expert.
  std::vector<std::vector<int64_t>> buckets(static_cast<size_t>(num_experts));
  for (int64_t s = 0; s < T * K; ++s) buckets[size_t(in.topk_ids[s])].push_back(s);
  slot_out_.resize(size_t(T * K * hidden));
  for (int64_t e = 0; e < num_experts; ++e) {
    const auto& slots = buckets[size_t(e)];
    if (slots.empty()) continue;
    const int64_t m = int64_t(slots.size());
    gathered_.resize(size_t(m * hidden));
    expert_out_.resize(size_t(m * hidden));
    for (int64_t r = 0; r < m; ++r)
      std::memcpy(gathered_.data() + r * hidden, in.x + (slots[size_t(r)] / K) * hidden, size_t(hidden) * sizeof(float));
    mlp_forward(moe.experts[size_t(e)], gathered_.data(), m, hidden, expert_out_.data(), hidden, scratch_);
    for (int64_t r = 0; r < m; ++r)
      std::memcpy(slot_out_.data() + slots[size_t(r)] * hidden, expert_out_.data() + r * hidden,
                  size_t(hidden) * sizeof(float));
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const float w = in.topk_weights[t * K + k];
      const float* src = slot_out_.data() + (t * K + k) * hidden;
      float* dst = out + t * hidden;
      for (int64_t c = 0; c < hidden; ++c) dst[c] += w * src[c];
    }
}

}  // namespace dsinfer::model
