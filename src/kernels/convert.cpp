#include "kernels/convert.h"

#include <algorithm>
#include <cmath>

#include "base/dtype.h"
#include "base/thread_pool.h"
#include "kernels/cpu_features.h"
#include "kernels/gemm.h"

namespace dsinfer::kernels {

namespace {

// Runs row(i) for i < m (rows of k elements), over the pool when large (base parallel_rows).
template <typename Row>
void for_rows(int64_t m, int64_t k, Row row) {
  parallel_rows(size_t(m), size_t(k), [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) row(int64_t(i));
  });
}

// One row of each conversion, per kernel path; the generic rows are the scalar definitions.
struct RowFns {
  void (*e4m3)(const uint8_t*, int64_t, float, float*);
  void (*bf16)(const uint16_t*, int64_t, float*);
  void (*to_bf16)(const float*, int64_t, uint16_t*);
  void (*round_bf16)(const float*, int64_t, float*);
  void (*quantize)(const float*, int64_t, bool, float*, uint8_t*, float*);
};

void quantize_row_scalar(const float* xi, int64_t k, bool ue8m0, float* row_scales, uint8_t* codes, float* values);

const RowFns kGenericRows{
    [](const uint8_t* a, int64_t n, float scale, float* o) {
      for (int64_t j = 0; j < n; ++j) o[j] = e4m3_to_f32(a[j]) * scale;
    },
    [](const uint16_t* a, int64_t n, float* o) {
      for (int64_t j = 0; j < n; ++j) o[j] = bf16_to_f32(a[j]);
    },
    [](const float* c, int64_t n, uint16_t* d) {
      for (int64_t j = 0; j < n; ++j) d[j] = f32_to_bf16(c[j]);
    },
    [](const float* x, int64_t n, float* o) {
      for (int64_t j = 0; j < n; ++j) o[j] = round_to_bf16(x[j]);
    },
    quantize_row_scalar};

#if defined(__x86_64__)
const RowFns kAvx2Rows{detail::e4m3_to_f32_avx2, detail::bf16_to_f32_avx2, detail::f32_to_bf16_avx2,
                       detail::round_to_bf16_avx2, detail::quantize_row_1x128_avx2};
const RowFns kAvx512Rows{detail::e4m3_to_f32_avx512, detail::bf16_to_f32_avx512, detail::f32_to_bf16_avx512,
                         detail::round_to_bf16_avx512, detail::quantize_row_1x128_avx512};
#endif

const RowFns& rows_for_isa() {
#if defined(__x86_64__)
  switch (active_isa()) {
    case Isa::kAvx512: return kAvx512Rows;
    case Isa::kAvx2: return kAvx2Rows;
    default: break;
  }
#endif
  return kGenericRows;
}

// out[i, j] = row conversion of a[i, j], row by row.
template <typename Src, typename Dst>
void convert_rows(const Src* a, int64_t lda, int64_t m, int64_t k, Dst* out, int64_t ldo,
                  void (*row)(const Src*, int64_t, Dst*)) {
  for_rows(m, k, [&](int64_t i) { row(a + i * lda, k, out + i * ldo); });
}

void quantize_row_scalar(const float* xi, int64_t k, bool ue8m0, float* row_scales, uint8_t* codes, float* values) {
  for (int64_t b = 0; b < k_blocks(k); ++b) {
    const int64_t c0 = b * kScaleBlock, c1 = std::min(k, c0 + kScaleBlock);
    float amax = 0;
    for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(xi[c]));
    float s = std::max(amax, 1e-4f) / kE4M3Max;
    if (ue8m0) s = std::exp2(std::ceil(std::log2(s)));
    row_scales[b] = s;
    const float inv = 1.0f / s;
    for (int64_t c = c0; c < c1; ++c) {
      const uint8_t q = f32_to_e4m3(xi[c] * inv);
      if (codes) codes[c] = q;
      if (values) values[c] = e4m3_to_f32(q);
    }
  }
}

}  // namespace

void e4m3_rows_to_f32(const uint8_t* a, int64_t lda, int64_t m, int64_t k, float* out, int64_t ldo) {
  const auto row = rows_for_isa().e4m3;
  for_rows(m, k, [&](int64_t i) { row(a + i * lda, k, 1.0f, out + i * ldo); });
}

void e4m3_to_f32_scaled(const uint8_t* a, int64_t n, float scale, float* out) { rows_for_isa().e4m3(a, n, scale, out); }

void bf16_rows_to_f32(const uint16_t* a, int64_t lda, int64_t m, int64_t k, float* out, int64_t ldo) {
  convert_rows(a, lda, m, k, out, ldo, rows_for_isa().bf16);
}

void f32_rows_to_bf16(const float* c, int64_t ldc, int64_t m, int64_t n, uint16_t* d, int64_t ldd) {
  convert_rows(c, ldc, m, n, d, ldd, rows_for_isa().to_bf16);
}

void round_rows_to_bf16(const float* x, int64_t ldx, int64_t m, int64_t k, float* out, int64_t ldo) {
  convert_rows(x, ldx, m, k, out, ldo, rows_for_isa().round_bf16);
}

void quantize_rows_1x128(const float* x, int64_t m, int64_t k, int64_t ldx, bool ue8m0, float* scales, uint8_t* codes,
                         float* values) {
  const auto row = rows_for_isa().quantize;
  const int64_t kb = k_blocks(k);
  for_rows(m, k, [&](int64_t i) {
    row(x + i * ldx, k, ue8m0, scales + i * kb, codes ? codes + i * k : nullptr, values ? values + i * k : nullptr);
  });
}

}  // namespace dsinfer::kernels
