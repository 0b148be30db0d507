#include "kernels/gemm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/scratch.h"
#include "base/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/cpu_features.h"
#include "kernels/gemm_internal.h"

namespace dsinfer::kernels {

namespace {

using detail::GemmProblem;

constexpr int64_t kRowsPerTask = 96;
static_assert(kRowsPerTask % detail::kRowGroup == 0, "tasks start on register-block (packed A group) boundaries");
// Packing A doubles its footprint; past this many floats (256 MB, a long MoE prefill) the GEMM
// reads A in place instead.
constexpr size_t kMaxPackedFloats = size_t(64) << 20;

float* thread_scratch() {
  thread_local AlignedBuffer<float> buf(size_t(detail::kChunkK * kPanelCols));
  return buf.data();
}

struct Task {
  int32_t problem;
  int32_t panel;
  int64_t m0, m1;
};

#if defined(__x86_64__)
// The problems as the x86 panels read them, in the calling thread's copy: A copied into the
// converting path's packed layout (gemm_internal.h) when any problem runs that path, and for the
// AVX2 FP8 GEMV whether the rows it runs fit its exact bit decode — decided here once per call
// rather than by every panel task. Returns `given` when neither applies.
const GemmProblem* prepare_x86_problems(const GemmProblem* given, const int64_t* rows, size_t count, Isa isa) {
  static thread_local std::vector<GemmProblem> tl_problems;
  static thread_local AlignedBuffer<float> tl_packed;
  struct Item {
    size_t problem;
    int64_t g0, g1;
    size_t offset;
  };
  static thread_local std::vector<Item> tl_items;
  std::vector<GemmProblem>& problems = tl_problems;
  std::vector<Item>& items = tl_items;
  items.clear();
  size_t total = 0;
  bool fp8_gemv = false;
  for (size_t q = 0; q < count; ++q) {
    fp8_gemv = fp8_gemv || (isa == Isa::kAvx2 && given[q].b->dtype == DType::kF8E4M3);
    // Only the converting path of FP8/BF16 panels reads a_packed (fp32 panels run on the fly).
    if (rows[q] <= detail::kOnTheFlyRows || given[q].b->dtype == DType::kF32) continue;
    const int64_t groups = (rows[q] + detail::kRowGroup - 1) / detail::kRowGroup, k = given[q].b->k;
    const size_t per_group = size_t(k * detail::kRowGroup);
    // Items of ~64K floats so the copy spreads over the pool.
    const int64_t step = std::max<int64_t>(1, int64_t(65536 / per_group));
    for (int64_t g0 = 0; g0 < groups; g0 += step)
      items.push_back({q, g0, std::min(groups, g0 + step), total + size_t(g0) * per_group});
    total += size_t(groups) * per_group;
  }
  const bool pack = !items.empty() && total <= kMaxPackedFloats;
  if (!pack && !fp8_gemv) return given;
  problems.assign(given, given + count);
  if (fp8_gemv)
    for (size_t q = 0; q < count; ++q) {
      const int64_t m = rows[q], tail = m <= detail::kOnTheFlyRows ? m : m % kRowsPerTask;
      if (problems[q].b->dtype == DType::kF8E4M3 && tail > 0 && tail <= detail::kOnTheFlyRows)
        problems[q].fp8_bits_fit = detail::fp8_bits_decode_fits(given[q], m - tail, m);
    }
  if (!pack) return problems.data();
  grow(tl_packed, total);
  float* packed = tl_packed.data();
  for (const Item& it : items)
    if (it.g0 == 0) problems[it.problem].a_packed = packed + it.offset;
  parallel_for(items.size(), 1, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const Item& it = items[i];
      detail::pack_a_groups(given[it.problem], rows[it.problem], given[it.problem].b->k, it.g0, it.g1, packed + it.offset);
    }
  });
  return problems.data();
}
#endif

detail::PanelFn panel_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::kAvx512: return detail::gemm_panel_avx512;
    case Isa::kAvx2: return detail::gemm_panel_avx2;
#endif
#if defined(__aarch64__)
    case Isa::kNeon: return detail::gemm_panel_neon;
#endif
    default: return detail::gemm_panel_generic;
  }
}

// Runs every (problem, panel, row range) task on the pool; tasks are listed problem by problem,
// panel by panel, so a contiguous chunk of tasks streams neighbouring weights.
void run_tasks(const GemmProblem* given, const int64_t* rows, size_t count) {
  // The calling thread's task list, reused: a decode step runs ~150 GEMMs. Named through a
  // reference so the pool's workers, which run the lambda below, see the caller's list and not
  // their own thread_local instance.
  static thread_local std::vector<Task> tl_tasks;
  std::vector<Task>& tasks = tl_tasks;
  tasks.clear();
  double work = 0;
  bool streaming = true;  // every problem decodes B on the fly: bandwidth bound
  for (size_t q = 0; q < count; ++q) {
    const int64_t m = rows[q];
    if (m <= 0) continue;
    const int64_t per = m <= detail::kOnTheFlyRows ? m : kRowsPerTask;
    streaming = streaming && m <= detail::kOnTheFlyRows;
    for (int64_t p = 0; p < given[q].b->panels; ++p)
      for (int64_t i = 0; i < m; i += per) tasks.push_back({int32_t(q), int32_t(p), i, std::min(m, i + per)});
    work += double(given[q].b->panels) * double(given[q].b->k) * double(kPanelCols) * double(std::max<int64_t>(m, 8));
  }
  if (tasks.empty()) return;
  const Isa isa = active_isa();
  const detail::PanelFn panel_fn = panel_for(isa);
  // The generic and NEON panels read the problems as given.
  const GemmProblem* problems = given;
#if defined(__x86_64__)
  if (isa == Isa::kAvx2 || isa == Isa::kAvx512) problems = prepare_x86_problems(given, rows, count, isa);
#endif
  // About 256K weight elements (or multiply-adds) per chunk keeps the pool's overhead small.
  const double per_task = work / double(tasks.size());
  const size_t grain = size_t(std::max(1.0, 262144.0 / std::max(per_task, 1.0)));
  // Bandwidth-bound tasks: each thread streams one contiguous share of the panels, its prefetch
  // stream warm; a 1024x1024 FP8 GEMV as 8 dynamic chunks of 2 panels read 19.0 GB/s, in shares
  // 19.5-20.5 (alternated in one process; +1-8% on the other GEMV shapes).
  if (streaming) {
    parallel_for_shares(tasks.size(), [&](size_t t) {
      const Task& task = tasks[t];
      panel_fn(problems[size_t(task.problem)], task.panel, task.m0, task.m1, thread_scratch());
    });
    return;
  }
  parallel_for(tasks.size(), grain, [&](size_t b, size_t e) {
    float* scratch = thread_scratch();
    for (size_t t = b; t < e; ++t) {
      const Task& task = tasks[t];
      panel_fn(problems[size_t(task.problem)], task.panel, task.m0, task.m1, scratch);
    }
  });
}

thread_local std::vector<float> tl_a, tl_sa, tl_c;

}  // namespace

void quantize_fp8_1x128(const float* x, int64_t m, int64_t k, int64_t ldx, bool ue8m0, uint8_t* q, float* scales) {
  quantize_rows_1x128(x, m, k, ldx, ue8m0, scales, q, nullptr);
}

bool prepare_activations(const float* x, int64_t m, int64_t k, int64_t ldx, ActQuant act, float* a, float* scales) {
  switch (act) {
    case ActQuant::kF32:
      for (int64_t i = 0; i < m; ++i) std::copy(x + i * ldx, x + i * ldx + k, a + i * k);
      return false;
    case ActQuant::kBf16:
      round_rows_to_bf16(x, ldx, m, k, a, k);
      return false;
    case ActQuant::kFp8:
    case ActQuant::kFp8Ue8m0:
      // Quantise, then hand the GEMM the exact values the e4m3 codes stand for.
      quantize_rows_1x128(x, m, k, ldx, act == ActQuant::kFp8Ue8m0, scales, nullptr, a);
      return true;
  }
  return false;
}

void gemm_f32_nt(const float* a, int64_t lda, const float* a_scales, int64_t ldsa, int64_t m, const PackedMatrix& b,
                 float* d, int64_t ldd) {
  GemmProblem g{a, lda, a_scales, ldsa, &b, d, ldd};
  run_tasks(&g, &m, 1);
}

void gemm_fp8_nt(const uint8_t* a, int64_t lda, const float* a_scales, int64_t m, const PackedMatrix& b, float* d,
                 int64_t ldd) {
  grow(tl_a, size_t(m * b.k));
  e4m3_rows_to_f32(a, lda, m, b.k, tl_a.data(), b.k);
  gemm_f32_nt(tl_a.data(), b.k, a_scales, k_blocks(b.k), m, b, d, ldd);
}

void gemm_fp8_nt(const uint8_t* a, int64_t lda, const float* a_scales, int64_t m, const PackedMatrix& b,
                 uint16_t* d_bf16, int64_t ldd) {
  grow(tl_c, size_t(m * b.n));
  gemm_fp8_nt(a, lda, a_scales, m, b, tl_c.data(), b.n);
  f32_rows_to_bf16(tl_c.data(), b.n, m, b.n, d_bf16, ldd);
}

void gemm_bf16_nt(const uint16_t* a, int64_t lda, int64_t m, const PackedMatrix& b, float* d, int64_t ldd) {
  grow(tl_a, size_t(m * b.k));
  bf16_rows_to_f32(a, lda, m, b.k, tl_a.data(), b.k);
  gemm_f32_nt(tl_a.data(), b.k, nullptr, 0, m, b, d, ldd);
}

void gemm_bf16_nt(const uint16_t* a, int64_t lda, int64_t m, const PackedMatrix& b, uint16_t* d_bf16, int64_t ldd) {
  grow(tl_c, size_t(m * b.n));
  gemm_bf16_nt(a, lda, m, b, tl_c.data(), b.n);
  f32_rows_to_bf16(tl_c.data(), b.n, m, b.n, d_bf16, ldd);
}

void linear(const float* x, int64_t m, int64_t ldx, const PackedMatrix& w, float* y, int64_t ldy, ActQuant act) {
  if (act == ActQuant::kF32) {
    gemm_f32_nt(x, ldx, nullptr, 0, m, w, y, ldy);
    return;
  }
  act = activation_format(act, w.dtype);
  grow(tl_a, size_t(m * w.k));
  grow(tl_sa, size_t(m * w.k_blocks));
  bool scaled = prepare_activations(x, m, w.k, ldx, act, tl_a.data(), tl_sa.data());
  gemm_f32_nt(tl_a.data(), w.k, scaled ? tl_sa.data() : nullptr, w.k_blocks, m, w, y, ldy);
}

void gemm_grouped_contiguous(const float* a, int64_t lda, const float* a_scales, int64_t m, const int32_t* group_idx,
                             const PackedMatrix* const* b, float* d, int64_t ldd) {
  static thread_local std::vector<GemmProblem> problems;
  static thread_local std::vector<int64_t> rows;
  problems.clear();
  rows.clear();
  for (int64_t i = 0; i < m;) {
    const int32_t g = group_idx[i];
    int64_t j = i + 1;
    while (j < m && group_idx[j] == g) ++j;
    if (g >= 0) {
      const PackedMatrix& bg = *b[g];
      problems.push_back({a + i * lda, lda, a_scales ? a_scales + i * bg.k_blocks : nullptr, bg.k_blocks, &bg,
                          d + i * ldd, ldd});
      rows.push_back(j - i);
    }
    i = j;
  }
  run_tasks(problems.data(), rows.data(), problems.size());
}

void gemm_grouped_contiguous_fp8(const uint8_t* a, const float* a_scales, int64_t m, int64_t k,
                                 const int32_t* group_idx, const PackedMatrix* const* b, float* d, int64_t ldd) {
  grow(tl_a, size_t(m * k));
  e4m3_rows_to_f32(a, k, m, k, tl_a.data(), k);
  gemm_grouped_contiguous(tl_a.data(), k, a_scales, m, group_idx, b, d, ldd);
}

void gemm_grouped_masked(const float* a, const float* a_scales, int64_t groups, int64_t m_max, int64_t k,
                         const int32_t* counts, const PackedMatrix* const* b, float* d) {
  static thread_local std::vector<GemmProblem> problems;
  static thread_local std::vector<int64_t> rows;
  problems.clear();
  rows.clear();
  const int64_t kb = k_blocks(k);
  for (int64_t g = 0; g < groups; ++g) {
    const PackedMatrix& bg = *b[g];
    problems.push_back({a + g * m_max * k, k, a_scales ? a_scales + g * m_max * kb : nullptr, kb, &bg,
                        d + g * m_max * bg.n, bg.n});
    rows.push_back(std::min<int64_t>(counts[g], m_max));
  }
  run_tasks(problems.data(), rows.data(), problems.size());
}

void gemm_grouped_masked_fp8(const uint8_t* a, const float* a_scales, int64_t groups, int64_t m_max, int64_t k,
                             const int32_t* counts, const PackedMatrix* const* b, float* d) {
  grow(tl_a, size_t(groups * m_max * k));
  for (int64_t g = 0; g < groups; ++g)
    e4m3_rows_to_f32(a + g * m_max * k, k, std::min<int64_t>(counts[g], m_max), k, tl_a.data() + g * m_max * k, k);
  gemm_grouped_masked(tl_a.data(), a_scales, groups, m_max, k, counts, b, d);
}

namespace detail {

void pack_a_groups(const GemmProblem& g, int64_t m, int64_t k, int64_t g0, int64_t g1, float* out) {
  for (int64_t grp = g0; grp < g1; ++grp) {
    const int64_t r0 = grp * kRowGroup, rn = std::min<int64_t>(kRowGroup, m - r0);
    const float* a[kRowGroup];
    for (int64_t r = 0; r < kRowGroup; ++r) a[r] = g.a + (r0 + std::min(r, rn - 1)) * g.lda;
    for (int64_t kk = 0; kk < k; ++kk, out += kRowGroup)
      for (int64_t r = 0; r < kRowGroup; ++r) out[r] = r < rn ? a[r][kk] : 0.0f;
  }
}

}  // namespace detail

}  // namespace dsinfer::kernels
