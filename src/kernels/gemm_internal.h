// Internal contract between gemm.cpp (argument handling, threading) and the per-ISA panel
// kernels (gemm_avx512.cpp, gemm_avx2.cpp). Not part of the kernel API.
//
// Every output element C[i, j] is reduced in one fixed order that depends on k alone:
//   for each 128-wide k block kb:  acc = 0;  acc = fma(A[i, kk], B[j, kk], acc) for kk in order
//                                  C = kb == 0 ? acc * s : fma(acc, s, C),  s = sa[i, kb] * sb[j, kb]
// (sa, sb default to 1). Both ISAs and every path (decode on the fly, chunked and buffered) run
// exactly these fp32 operations, so a row's result never depends on m, on the other rows, on the
// thread count or on the ISA.
#pragma once

#include <cstdint>

#include "kernels/packed_matrix.h"

namespace dsinfer::kernels::detail {

inline constexpr int64_t kChunkK = 128;        // k rows of a panel converted to fp32 at a time
static_assert(kChunkK % kScaleBlock == 0, "a chunk must hold whole scale blocks: one reduction order");
inline constexpr int64_t kOnTheFlyRows = 4;    // up to this many rows decode B straight from memory
inline constexpr int64_t kRowGroup = 6;        // rows of the converting path's register block

struct GemmProblem {
  const float* a = nullptr;  // [m, k] fp32 values of A (already quantised or rounded as asked)
  int64_t lda = 0;
  const float* sa = nullptr;  // [m, k_blocks] per-row block scales, or null
  int64_t ldsa = 0;
  const PackedMatrix* b = nullptr;
  float* c = nullptr;  // [m, n] fp32
  int64_t ldc = 0;
  // Optional copy of A for the converting path (m > kOnTheFlyRows, vector panels): rows in groups of
  // kRowGroup, each group k-major ([m / 6][k][6], the last group zero-padded), so the register
  // block's broadcasts read one sequential stream instead of six rows a whole row apart.
  const float* a_packed = nullptr;
  // AVX2 only: the rows that run on the fly (all m <= kOnTheFlyRows of them, or a last task's
  // tail) fit the AVX2 FP8 GEMV's exact bit decode (fp8_bits_decode_fits). Decided once per
  // call by gemm.cpp, not once per panel.
  bool fp8_bits_fit = false;
};

// Writes problem g's A in the a_packed layout to out: row groups [g0, g1), k floats x 6 each.
void pack_a_groups(const GemmProblem& g, int64_t m, int64_t k, int64_t g0, int64_t g1, float* out);

// Computes rows [m0, m1) of C for panel p. scratch: kChunkK * 64 floats, 64-byte aligned.
// One function per kernel path (cpu_features.h); each exists only where its ISA can be compiled.
using PanelFn = void (*)(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch);
void gemm_panel_generic(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch);
#if defined(__x86_64__)
// Whether rows [r0, r1) of g's A (and their block scales) fit the AVX2 FP8 GEMV's exact decode
// (gemm_avx2.cpp: every nonzero |a| in [2^-30, 2^64), every activation scale below 2^36).
bool fp8_bits_decode_fits(const GemmProblem& g, int64_t r0, int64_t r1);
void gemm_panel_avx512(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch);
void gemm_panel_avx2(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch);
#endif
#if defined(__aarch64__)
void gemm_panel_neon(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch);
#endif

}  // namespace dsinfer::kernels::detail
