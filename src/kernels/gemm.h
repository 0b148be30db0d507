// GEMMs with DeepGEMM's semantics on the CPU: D[m, n] = A[m, k] · B[n, k]ᵀ ("NT"), B packed once
// at load time (kernels/packed_matrix.h).
//
//  - gemm_fp8_nt: A e4m3 with one fp32 scale per row per 128 channels (1x128), B e4m3 with one
//    fp32 scale per 128x128 block; fp32 accumulation inside each 128-wide k block, then scaled by
//    sa * sb and added to the running total. k and n need not be multiples of 128.
//  - quantize_fp8_1x128: the activation quantiser feeding it (amax clamped at 1e-4, scale =
//    amax / 448, optionally rounded up to a power of two: UE8M0).
//  - gemm_bf16_nt: bf16 A against bf16 (or any packed) B.
//  - linear: the model's entry: fp32 activations presented to the weights as fp32 (exact
//    verification), rounded to bf16, or quantised to e4m3 1x128 (as DeepSeek serves FP8 weights).
//  - grouped GEMMs for MoE in DeepGEMM's two layouts: contiguous (rows sorted by expert, a group
//    index per row, -1 for padding rows, which are skipped and left untouched) and masked
//    ([G, m_max, k] with a count of valid rows per group).
//
// Every output element is reduced in a fixed order that depends only on k (gemm_internal.h), so
// the result of a row is bit-identical whatever m is, whichever rows share the call, however
// many threads run it and on either ISA. Small m decodes B straight from the packed weights (the
// decode GEMV, bandwidth bound; software prefetch 16 KB ahead into L2 and 2 KB into L1 keeps a
// core streaming); larger m converts B panels to fp32 in L1-sized chunks once per
// 96 rows and runs a 6x64 register-blocked FMA kernel.
#pragma once

#include <cstdint>

#include "kernels/packed_matrix.h"

namespace dsinfer::kernels {

enum class ActQuant { kF32, kBf16, kFp8, kFp8Ue8m0 };

// The format activations actually take against weights of dtype `weights`: FP8 activations
// only meet FP8 weights (DeepGEMM's pairing); other weights get bf16 instead.
inline ActQuant activation_format(ActQuant asked, DType weights) {
  return asked == ActQuant::kF32 || asked == ActQuant::kBf16 || weights == DType::kF8E4M3 ? asked : ActQuant::kBf16;
}

inline int64_t k_blocks(int64_t k) { return (k + kScaleBlock - 1) / kScaleBlock; }

// x [m, k] (row stride ldx) -> q [m, k] e4m3 (row stride k), scales [m, k_blocks(k)].
void quantize_fp8_1x128(const float* x, int64_t m, int64_t k, int64_t ldx, bool ue8m0, uint8_t* q, float* scales);

// a [m, b.k] e4m3 (row stride lda), a_scales [m, k_blocks(b.k)]; d [m, b.n] (row stride ldd).
void gemm_fp8_nt(const uint8_t* a, int64_t lda, const float* a_scales, int64_t m, const PackedMatrix& b, float* d,
                 int64_t ldd);
void gemm_fp8_nt(const uint8_t* a, int64_t lda, const float* a_scales, int64_t m, const PackedMatrix& b,
                 uint16_t* d_bf16, int64_t ldd);
// a [m, b.k] bf16.
void gemm_bf16_nt(const uint16_t* a, int64_t lda, int64_t m, const PackedMatrix& b, float* d, int64_t ldd);
void gemm_bf16_nt(const uint16_t* a, int64_t lda, int64_t m, const PackedMatrix& b, uint16_t* d_bf16, int64_t ldd);
// a [m, b.k] fp32 values, optional a_scales [m, k_blocks] (ldsa) applied per block.
void gemm_f32_nt(const float* a, int64_t lda, const float* a_scales, int64_t ldsa, int64_t m, const PackedMatrix& b,
                 float* d, int64_t ldd);

// y [m, w.n] = x [m, w.k] · wᵀ with x presented as `act` (kFp8* only for e4m3 weights; other
// weights get kBf16 instead).
void linear(const float* x, int64_t m, int64_t ldx, const PackedMatrix& w, float* y, int64_t ldy, ActQuant act);

// Contiguous layout: a [m, k] rows sorted by group, group_idx [m] (-1: padding row, skipped);
// b[g] for each group; d [m, n]. a_scales [m, k_blocks] when the rows are FP8-quantised values.
void gemm_grouped_contiguous(const float* a, int64_t lda, const float* a_scales, int64_t m, const int32_t* group_idx,
                             const PackedMatrix* const* b, float* d, int64_t ldd);
// FP8 A (e4m3 bytes + 1x128 scales), as DeepEP's normal dispatch delivers it.
void gemm_grouped_contiguous_fp8(const uint8_t* a, const float* a_scales, int64_t m, int64_t k,
                                 const int32_t* group_idx, const PackedMatrix* const* b, float* d, int64_t ldd);
// Masked layout: a [G, m_max, k], counts [G] valid rows per group; d [G, m_max, n] (rows past
// the count are left untouched).
void gemm_grouped_masked(const float* a, const float* a_scales, int64_t groups, int64_t m_max, int64_t k,
                         const int32_t* counts, const PackedMatrix* const* b, float* d);
void gemm_grouped_masked_fp8(const uint8_t* a, const float* a_scales, int64_t groups, int64_t m_max, int64_t k,
                             const int32_t* counts, const PackedMatrix* const* b, float* d);

// Presents x to the GEMM as `act` would: writes fp32 values a [m, k] and (FP8 only) scales.
// Returns whether scales were written.
bool prepare_activations(const float* x, int64_t m, int64_t k, int64_t ldx, ActQuant act, float* a, float* scales);

}  // namespace dsinfer::kernels
