#include "model/grouped_experts.h"

#include <algorithm>

#include "base/profile.h"
#include "base/scratch.h"
#include "kernels/activation.h"
#include "kernels/convert.h"

namespace dsinfer::model {

void PackedExperts::add(PackedMlp e) {
  experts.push_back(std::move(e));
  // The tables point into `experts`, which may have moved: rebuilt.
  gate_up.clear();
  gate.clear();
  up.clear();
  down.clear();
  for (const PackedMlp& m : experts) {
    gate_up.push_back(&m.gate_up);
    gate.push_back(&m.gate);
    up.push_back(&m.up);
    down.push_back(&m.down);
  }
}

void GroupedExperts::contiguous(const PackedExperts& e, const float* a, const float* a_scales, int64_t S,
                                const int32_t* group, kernels::ActQuant act, float* y) {
  const int64_t hidden = e.hidden(), inter = e.inter(), kb2 = kernels::k_blocks(inter);
  grow(h_, S * 2 * inter);  // gate|up [S, 2F]
  {
    ProfileScope scope("moe.routed.gate_up");
    if (e.experts[0].fused()) {
      kernels::gemm_grouped_contiguous(a, hidden, a_scales, S, group, e.gate_up.data(), h_.data(), 2 * inter);
    } else {
      kernels::gemm_grouped_contiguous(a, hidden, a_scales, S, group, e.gate.data(), h_.data(), 2 * inter);
      kernels::gemm_grouped_contiguous(a, hidden, a_scales, S, group, e.up.data(), h_.data() + inter, 2 * inter);
    }
  }
  grow(act_, S * inter);  // silu(gate) * up [S, F]
  kernels::silu_and_mul(h_.data(), S, inter, act_.data());
  grow(a2_, S * inter);  // [S, F] as the GEMM reads it
  grow(sa2_, S * kb2);   // [S, kb(F)]
  const bool scaled = kernels::prepare_activations(act_.data(), S, inter, inter, act, a2_.data(), sa2_.data());
  {
    ProfileScope scope("moe.routed.down");
    kernels::gemm_grouped_contiguous(a2_.data(), inter, scaled ? sa2_.data() : nullptr, S, group, e.down.data(), y,
                                     hidden);
  }
  if (act != kernels::ActQuant::kF32) kernels::round_rows_to_bf16(y, hidden, S, hidden, y, hidden);
}

void GroupedExperts::masked(const PackedExperts& e, const float* a, const float* a_scales, int64_t G, int64_t m_max,
                            const int32_t* counts, const int32_t* expert_of, kernels::ActQuant act, float* y) {
  const int64_t hidden = e.hidden(), inter = e.inter(), kb2 = kernels::k_blocks(inter);
  gu_.clear();
  g_.clear();
  u_.clear();
  d_.clear();
  for (int64_t g = 0; g < G; ++g) {
    const int32_t x = expert_of[g];
    gu_.push_back(e.gate_up[size_t(x)]);
    g_.push_back(e.gate[size_t(x)]);
    u_.push_back(e.up[size_t(x)]);
    d_.push_back(e.down[size_t(x)]);
  }
  // The masked GEMM writes [G, m_max, n] with n = the matrix's width: gate|up fused into one
  // [.., 2F] row, or gate and up into two [.., F] blocks joined per row below.
  grow(h_, G * m_max * 2 * inter);
  {
    ProfileScope scope("moe.routed.gate_up");
    if (e.experts[0].fused()) {
      kernels::gemm_grouped_masked(a, a_scales, G, m_max, hidden, counts, gu_.data(), h_.data());
    } else {
      grow(act_, G * m_max * 2 * inter);
      kernels::gemm_grouped_masked(a, a_scales, G, m_max, hidden, counts, g_.data(), act_.data());
      kernels::gemm_grouped_masked(a, a_scales, G, m_max, hidden, counts, u_.data(), act_.data() + G * m_max * inter);
      for (int64_t g = 0; g < G; ++g)
        for (int64_t r = 0; r < counts[g]; ++r) {
          const int64_t row = g * m_max + r;
          std::copy_n(act_.data() + row * inter, inter, h_.data() + row * 2 * inter);
          std::copy_n(act_.data() + G * m_max * inter + row * inter, inter, h_.data() + row * 2 * inter + inter);
        }
    }
  }
  grow(act_, G * m_max * inter);
  grow(a2_, G * m_max * inter);
  grow(sa2_, G * m_max * kb2);
  bool scaled = false;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t row = g * m_max, n = counts[g];
    if (n == 0) continue;
    kernels::silu_and_mul(h_.data() + row * 2 * inter, n, inter, act_.data() + row * inter);
    scaled = kernels::prepare_activations(act_.data() + row * inter, n, inter, inter, act, a2_.data() + row * inter,
                                          sa2_.data() + row * kb2);
  }
  {
    ProfileScope scope("moe.routed.down");
    kernels::gemm_grouped_masked(a2_.data(), scaled ? sa2_.data() : nullptr, G, m_max, inter, counts, d_.data(), y);
  }
  if (act != kernels::ActQuant::kF32)
    for (int64_t g = 0; g < G; ++g)
      kernels::round_rows_to_bf16(y + g * m_max * hidden, hidden, counts[g], hidden, y + g * m_max * hidden, hidden);
}

}  // namespace dsinfer::model
