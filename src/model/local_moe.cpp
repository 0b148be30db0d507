#include "model/local_moe.h"

#include <algorithm>
#include <cstring>

#include "base/profile.h"
#include "base/scratch.h"
#include "base/thread_pool.h"
#include "kernels/vec.h"

namespace dsinfer::model {

void LocalMoe::prepare(const ModelWeights&, const std::function<void(const MlpWeights&)>& packed) {
  for (size_t l = 0; l < weights_.layers.size(); ++l)
    if (weights_.layers[l].is_moe) layer(int(l), packed);
}

PackedExperts& LocalMoe::layer(int l, const std::function<void(const MlpWeights&)>& packed) {
  if (layers_.size() < weights_.layers.size()) layers_.resize(weights_.layers.size());
  PackedExperts& L = layers_[size_t(l)];
  if (!L.empty()) return L;
  const MoeWeights& moe = weights_.layers[size_t(l)].moe;
  L.experts.reserve(moe.experts.size());
  for (const MlpWeights& e : moe.experts) {
    L.add(PackedMlp::pack(e));
    if (packed) packed(e);
  }
  return L;
}

// x [T, D], topk ids/weights [T, K] -> y [S, D], one row per (token, slot); S = T * K slots;
// kb = 128-wide scale blocks per row.
void LocalMoe::compute(int micro_batch) {
  Call& c = calls_[size_t(micro_batch)];
  const MoeInput& in = c.in;
  PackedExperts& L = layer(in.layer);
  const int64_t hidden = L.hidden(), K = in.top_k, T = in.num_tokens, S = T * K;
  if (T == 0) return;
  const int64_t num_experts = L.size();
  const kernels::ActQuant act = expert_activation_quant(precision_, activations_, L.experts[0].dtype);
  const int64_t kb1 = kernels::k_blocks(hidden);

  // Contiguous layout: slots sorted by expert (stable, so by token within an expert).
  grow(offset_, num_experts + 1);  // first row of each expert [E + 1]
  std::fill(offset_.begin(), offset_.begin() + num_experts + 1, 0);
  for (int64_t s = 0; s < S; ++s) offset_[size_t(in.topk_ids[s]) + 1]++;
  for (int64_t e = 0; e < num_experts; ++e) offset_[size_t(e + 1)] += offset_[size_t(e)];
  grow(c.row_of_slot, S);  // slot -> row [S]
  grow(group_, S);        // row -> expert [S]
  grow(order_, S);        // row -> slot [S]
  {
    grow(cursor_, num_experts);
    std::copy(offset_.begin(), offset_.begin() + num_experts, cursor_.begin());
    for (int64_t s = 0; s < S; ++s) {
      int64_t r = cursor_[size_t(in.topk_ids[s])]++;
      c.row_of_slot[size_t(s)] = r;
      order_[size_t(r)] = int32_t(s);
      group_[size_t(r)] = in.topk_ids[s];
    }
  }
  // Present each token once (fp32, bf16 or FP8 1x128), then gather its rows.
  grow(xq_, T * hidden);  // x as the GEMM reads it [T, D]
  grow(xsq_, T * kb1);    // its scales [T, kb(D)]
  const bool scaled = kernels::prepare_activations(in.x, T, hidden, hidden, act, xq_.data(), xsq_.data());
  grow(a_, S * hidden);  // gathered rows [S, D]
  grow(sa_, S * kb1);    // [S, kb(D)]
  // The gather and the combine below move S rows (64 MB a layer for a 2,048-token prefill of
  // bench-v3-small): over the pool when large, rows (tokens) split without changing any sum's order.
  parallel_rows(size_t(S), size_t(hidden), [&](size_t b, size_t e) {
    for (size_t r = b; r < e; ++r) {
      const int64_t t = order_[r] / K;
      std::memcpy(a_.data() + int64_t(r) * hidden, xq_.data() + t * hidden, size_t(hidden) * sizeof(float));
      if (scaled) std::memcpy(sa_.data() + int64_t(r) * kb1, xsq_.data() + t * kb1, size_t(kb1) * sizeof(float));
    }
  });
  grow(c.y, S * hidden);  // expert outputs [S, D]
  experts_.contiguous(L, a_.data(), scaled ? sa_.data() : nullptr, S, group_.data(), act, c.y.data());
}

// out [T, D] += sum_k w_k y[(t, k)], in top-k slot order.
void LocalMoe::finish(int micro_batch, float* out) {
  const Call& c = calls_[size_t(micro_batch)];
  const MoeInput& in = c.in;
  if (in.num_tokens == 0) return;
  const int64_t hidden = layers_[size_t(in.layer)].hidden(), K = in.top_k, T = in.num_tokens;
  parallel_rows(size_t(T), size_t(K * hidden), [&](size_t b, size_t e) {
    for (size_t t = b; t < e; ++t)
      for (int64_t k = 0; k < K; ++k) {
        const float w = in.topk_weights[int64_t(t) * K + k];
        kernels::axpy(w, c.y.data() + c.row_of_slot[t * size_t(K) + size_t(k)] * hidden, out + int64_t(t) * hidden,
                      hidden);
      }
  });
}

}  // namespace dsinfer::model
