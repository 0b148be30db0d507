// Row-wise element conversions around the GEMMs: widening an A operand to the fp32 the panel
// kernels read, DeepGEMM's 1x128 activation quantiser, and narrowing a result to bf16.
//
// They used to be scalar loops on the calling thread. At m = 1 the quantiser took 5 µs of a
// 45 µs 1024x1024 FP8 GEMV, and widening a 512x4096 FP8 A took ~2 ms of a ~14 ms GEMM, so they
// are vectorised (AVX-512 or AVX2, as kernels/cpu_features.h chooses) and split over the thread pool by rows when a
// call is large. Every function gives exactly the bits of the scalar definitions in
// base/dtype.h on every path (tests compare the two over every e4m3 code and rounding edge).
#pragma once

#include <cstdint>

namespace dsinfer::kernels {

// out[i, j] = e4m3_to_f32(a[i, j]) for i < m, j < k.
void e4m3_rows_to_f32(const uint8_t* a, int64_t lda, int64_t m, int64_t k, float* out, int64_t ldo);
// out[j] = e4m3_to_f32(a[j]) * scale for j < n: one block of an FP8 row with its scale.
void e4m3_to_f32_scaled(const uint8_t* a, int64_t n, float scale, float* out);
// out[i, j] = bf16_to_f32(a[i, j]).
void bf16_rows_to_f32(const uint16_t* a, int64_t lda, int64_t m, int64_t k, float* out, int64_t ldo);
// d[i, j] = f32_to_bf16(c[i, j]) (round to nearest even, NaN stays NaN).
void f32_rows_to_bf16(const float* c, int64_t ldc, int64_t m, int64_t n, uint16_t* d, int64_t ldd);
// out[i, j] = round_to_bf16(x[i, j]): bf16 activations presented to the fp32 panel kernels.
void round_rows_to_bf16(const float* x, int64_t ldx, int64_t m, int64_t k, float* out, int64_t ldo);

// DeepGEMM's activation quantiser, per row and 128 channels: scale = max(amax, 1e-4) / 448
// (rounded up to a power of two for UE8M0), code = f32_to_e4m3(x / scale), where the division
// is x * (1 / scale) as in the scalar definition. scales: [m, k_blocks(k)].
// codes (may be null): [m, k] e4m3 bytes; values (may be null): [m, k] the exact values those
// codes stand for, e4m3_to_f32(code), which is what the fp32 panel kernels multiply.
void quantize_rows_1x128(const float* x, int64_t m, int64_t k, int64_t ldx, bool ue8m0, float* scales, uint8_t* codes,
                         float* values);

namespace detail {
#if defined(__x86_64__)
// One row's worth of each conversion per x86 path (convert_avx512.cpp, convert_avx2.cpp); n any length.
void e4m3_to_f32_avx512(const uint8_t* a, int64_t n, float scale, float* out);
void bf16_to_f32_avx512(const uint16_t* a, int64_t n, float* out);
void f32_to_bf16_avx512(const float* c, int64_t n, uint16_t* d);
void round_to_bf16_avx512(const float* x, int64_t n, float* out);
void quantize_row_1x128_avx512(const float* x, int64_t k, bool ue8m0, float* scales, uint8_t* codes, float* values);
void e4m3_to_f32_avx2(const uint8_t* a, int64_t n, float scale, float* out);
void bf16_to_f32_avx2(const uint16_t* a, int64_t n, float* out);
void f32_to_bf16_avx2(const float* c, int64_t n, uint16_t* d);
void round_to_bf16_avx2(const float* x, int64_t n, float* out);
void quantize_row_1x128_avx2(const float* x, int64_t k, bool ue8m0, float* scales, uint8_t* codes, float* values);
#endif
}  // namespace detail

}  // namespace dsinfer::kernels
