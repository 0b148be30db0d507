#include "model/local_moe.h"

#include <algorithm>
#include <cstring>

#include "base/profile.h"
#include "base/thread_pool.h"
#include "kernels/activation.h"
#include "kernels/vec.h"
#include "base/scratch.h"

namespace dsinfer::model {

void LocalMoe::prepare(const std::function<void(const MlpWeights&)>& packed) {
  for (size_t l = 0; l < weights_.layers.size(); ++l)
    if (weights_.layers[l].is_moe) layer(int(l), packed);
}

LocalMoe::Layer& LocalMoe::layer(int l, const std::function<void(const MlpWeights&)>& packed) {
  if (layers_.size() < weights_.layers.size()) layers_.resize(weights_.layers.size());
  Layer& L = layers_[size_t(l)];
  if (!L.experts.empty()) return L;
  const MoeWeights& moe = weights_.layers[size_t(l)].moe;
  L.experts.reserve(moe.experts.size());
  for (const MlpWeights& e : moe.experts) {
    L.experts.push_back(PackedMlp::pack(e));
    if (packed) packed(e);
  }
  for (const PackedMlp& e : L.experts) {
    L.gate_up.push_back(&e.gate_up);
    L.gate.push_back(&e.gate);
    L.up.push_back(&e.up);
    L.down.push_back(&e.down);
  }
  return L;
}

// x [T, D], topk ids/weights [T, K] -> out [T, D] += sum_k w_k expert_k(x). S = T * K slots;
// F = moe_intermediate_size; kb = 128-wide scale blocks per row.
void LocalMoe::run(const MoeInput& in, float* out) {
  Layer& L = layer(in.layer);
  const PackedMlp& e0 = L.experts[0];
  const int64_t hidden = e0.down.n, inter = e0.inter, K = in.top_k, T = in.num_tokens, S = T * K;
  const int64_t num_experts = int64_t(L.experts.size());
  const kernels::ActQuant act = activation_quant(precision_);
  const int64_t kb1 = kernels::k_blocks(hidden), kb2 = kernels::k_blocks(inter);

  // Contiguous layout: slots sorted by expert (stable, so by token within an expert).
  grow(offset_, num_experts + 1);  // first row of each expert [E + 1]
  std::fill(offset_.begin(), offset_.begin() + num_experts + 1, 0);
  for (int64_t s = 0; s < S; ++s) offset_[size_t(in.topk_ids[s]) + 1]++;
  for (int64_t e = 0; e < num_experts; ++e) offset_[size_t(e + 1)] += offset_[size_t(e)];
  grow(row_of_slot_, S);  // slot -> row [S]
  grow(group_, S);        // row -> expert [S]
  grow(order_, S);        // row -> slot [S]
  {
    grow(cursor_, num_experts);
    std::copy(offset_.begin(), offset_.begin() + num_experts, cursor_.begin());
    for (int64_t s = 0; s < S; ++s) {
      int64_t r = cursor_[size_t(in.topk_ids[s])]++;
      row_of_slot_[size_t(s)] = r;
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
  // gate|up -> silu*up -> down.
  grow(h_, S * 2 * inter);  // gate|up [S, 2F]
  const float* sa = scaled ? sa_.data() : nullptr;
  {
    ProfileScope scope("moe.routed.gate_up");
    if (e0.fused()) {
      kernels::gemm_grouped_contiguous(a_.data(), hidden, sa, S, group_.data(), L.gate_up.data(), h_.data(), 2 * inter);
    } else {
      kernels::gemm_grouped_contiguous(a_.data(), hidden, sa, S, group_.data(), L.gate.data(), h_.data(), 2 * inter);
      kernels::gemm_grouped_contiguous(a_.data(), hidden, sa, S, group_.data(), L.up.data(), h_.data() + inter, 2 * inter);
    }
  }
  grow(act_, S * inter);  // silu(gate) * up [S, F]
  kernels::silu_and_mul(h_.data(), S, inter, act_.data());
  grow(a2_, S * inter);  // [S, F] as the GEMM reads it
  grow(sa2_, S * kb2);   // [S, kb(F)]
  const bool scaled2 = kernels::prepare_activations(act_.data(), S, inter, inter, act, a2_.data(), sa2_.data());
  grow(y_, S * hidden);  // down [S, D]
  {
    ProfileScope scope("moe.routed.down");
    kernels::gemm_grouped_contiguous(a2_.data(), inter, scaled2 ? sa2_.data() : nullptr, S, group_.data(),
                                     L.down.data(), y_.data(), hidden);
  }
  // Combine in top-k slot order.
  parallel_rows(size_t(T), size_t(K * hidden), [&](size_t b, size_t e) {
    for (size_t t = b; t < e; ++t)
      for (int64_t k = 0; k < K; ++k) {
        const float w = in.topk_weights[int64_t(t) * K + k];
        kernels::axpy(w, y_.data() + row_of_slot_[t * size_t(K) + size_t(k)] * hidden, out + int64_t(t) * hidden, hidden);
      }
  });
}

}  // namespace dsinfer::model
