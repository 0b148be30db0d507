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

bool use_avx512() { return active_isa() == Isa::kAvx512; }

// out[i, j] = scalar(a[i, j]) row by row, through the AVX-512 row function when the CPU has it.
template <typename Src, typename Dst, typename Scalar>
void convert_rows(const Src* a, int64_t lda, int64_t m, int64_t k, Dst* out, int64_t ldo,
                  void (*vec)(const Src*, int64_t, Dst*), Scalar scalar) {
  const bool use_vec = use_avx512();
  for_rows(m, k, [&](int64_t i) {
    const Src* src = a + i * lda;
    Dst* dst = out + i * ldo;
    if (use_vec) vec(src, k, dst);
    else
      for (int64_t j = 0; j < k; ++j) dst[j] = scalar(src[j]);
  });
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
  convert_rows(a, lda, m, k, out, ldo, +[](const uint8_t* s, int64_t n, float* o) { detail::e4m3_to_f32_avx512(s, n, 1.0f, o); },
               [](uint8_t v) { return e4m3_to_f32(v); });
}

void e4m3_to_f32_scaled(const uint8_t* a, int64_t n, float scale, float* out) {
  if (use_avx512()) detail::e4m3_to_f32_avx512(a, n, scale, out);
  else
    for (int64_t j = 0; j < n; ++j) out[j] = e4m3_to_f32(a[j]) * scale;
}

void bf16_rows_to_f32(const uint16_t* a, int64_t lda, int64_t m, int64_t k, float* out, int64_t ldo) {
  convert_rows(a, lda, m, k, out, ldo, detail::bf16_to_f32_avx512, [](uint16_t v) { return bf16_to_f32(v); });
}

void f32_rows_to_bf16(const float* c, int64_t ldc, int64_t m, int64_t n, uint16_t* d, int64_t ldd) {
  convert_rows(c, ldc, m, n, d, ldd, detail::f32_to_bf16_avx512, [](float v) { return f32_to_bf16(v); });
}

void round_rows_to_bf16(const float* x, int64_t ldx, int64_t m, int64_t k, float* out, int64_t ldo) {
  convert_rows(x, ldx, m, k, out, ldo, detail::round_to_bf16_avx512, [](float v) { return round_to_bf16(v); });
}

void quantize_rows_1x128(const float* x, int64_t m, int64_t k, int64_t ldx, bool ue8m0, float* scales, uint8_t* codes,
                         float* values) {
  const bool vec = use_avx512();
  const int64_t kb = k_blocks(k);
  for_rows(m, k, [&](int64_t i) {
    uint8_t* q = codes ? codes + i * k : nullptr;
    float* v = values ? values + i * k : nullptr;
    if (vec) detail::quantize_row_1x128_avx512(x + i * ldx, k, ue8m0, scales + i * kb, q, v);
    else quantize_row_scalar(x + i * ldx, k, ue8m0, scales + i * kb, q, v);
  });
}

}  // namespace dsinfer::kernels
