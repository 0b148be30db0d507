// NEON panel kernels (aarch64; Advanced SIMD is part of ARMv8-A, so no run-time check beyond the
// architecture). Same reduction order as every other path (gemm_internal.h): each output element
// is accumulated with fused multiply-adds (vfmaq_* are FMLA, fused) in k order from zero per
// 128-wide k block, then C = kb == 0 ? acc * s : fma(acc, s, C), so the results are bit-identical
// to the generic and x86 panels.
//
// Packed rows are decoded in memory order. The packing (packed_position) permutes each 64-column
// row for the AVX-512 decoder, but in a way that keeps every 4 contiguous columns together in one
// 4-lane vector of these decoders, so a decoded vector is a column block of 4 (its lanes in
// column order) and only the vectors are permuted: col_block<SRC>(y), known at compile time, is
// where memory-order vector y goes in C. No lane ever needs a scatter.
//
//   FP8:  16 bytes -> 4 vectors. Viewed as 8 16-bit lanes, each lane holds an even byte (low
//         half) and an odd byte (high half). An e4m3 byte placed with its sign at bit 15 and its
//         7 exponent+mantissa bits at 13..7 of a 16-bit lane is an IEEE fp16 equal to the e4m3
//         value times 2^-8, subnormals included; vcvt_f32_f16 widens it exactly. SRI (shift right
//         and insert) by 1 plus one AND builds that for the odd bytes, a shift by 8 first for the
//         even ones. The 2^-8 is undone exactly: the decode GEMV multiplies A by 256 instead (a
//         copy of the block's activations; exact unless |A| >= 2^120 could overflow, in which
//         case that block multiplies the decoded weights by 256, also exact), the converting path
//         multiplies the decoded weights by 256 once per chunk. Either way each FMA sees a product
//         equal to A * e4m3 value, so it rounds exactly as the reference's does. (The NaN codes
//         0x7f/0xff decode to a finite value here; they are not weights.)
//   BF16: 16 bytes -> 2 vectors, each element shifted into the top half of a 32-bit lane (SHLL).
//   F32:  plain loads (the fp32 packing keeps columns in order).
//
// Paths, as on x86: decode GEMV (m <= kOnTheFlyRows, FP8/BF16/F32) decodes each packed row straight
// from memory, with software prefetch; per 128-row k block it sweeps the block once per column
// group (64 columns for 1 row, 32 for 2, 16 for 3-4, so accumulators fit the 32 q registers), the
// block's 8-32 KB staying in L1 after the first sweep. GEMM (m > 4) converts a 128-row chunk of an
// FP8/BF16 panel to fp32 in column order in scratch (fp32 panels are read in place) and runs a
// 6-row x 16-column register block (24 accumulators, 4 B vectors, A broadcast per row).
#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/gemm_internal.h"
#include "kernels/prefetch.h"

// GCC's pre-allocation scheduler hoists every decode of a row above its FMAs and then spills
// accumulators to the stack inside the hot loops; out-of-order cores do not need it.
#pragma GCC optimize("no-schedule-insns")

namespace dsinfer::kernels::detail {

namespace {

enum Src { kSrcF32, kSrcBf16, kSrcFp8 };

constexpr int kVectors = int(kPanelCols) / 4;  // 4-lane vectors in a 64-column row
static_assert(kChunkK == kScaleBlock, "the GEMM path converts and applies one scale block per chunk");

// Decoded 4-lane vectors per 16 bytes of packed row.
template <int SRC>
constexpr int kVecPerUnit = SRC == kSrcFp8 ? 4 : SRC == kSrcBf16 ? 2 : 1;

// Column block (columns 4x .. 4x+3, in lane order) of memory-order vector y; see the header.
// FP8 byte q = 16a + 8b + 2d + e holds column 32b + 16e + 4a + d; BF16 element
// q = 32A + 8B + 4E + D holds column 32A + 16E + 4B + D; fp32 keeps columns in order.
template <int SRC>
constexpr int col_block(int y) {
  if constexpr (SRC == kSrcFp8) {
    constexpr int kOffset[4] = {0, 8, 4, 12};  // even bytes low/high half, odd bytes low/high
    return y / 4 + kOffset[y % 4];
  } else if constexpr (SRC == kSrcBf16) {
    const int z = y / 2;
    return 8 * (z / 4) + z % 4 + 4 * (y % 2);
  } else {
    return y;
  }
}

// 16 bytes of a packed row -> kVecPerUnit<SRC> fp32 vectors (FP8: the e4m3 values times 2^-8).
template <int SRC>
inline void decode_unit(const uint8_t* p, float32x4_t* w) {
  if constexpr (SRC == kSrcFp8) {
    const uint16x8_t u = vreinterpretq_u16_u8(vld1q_u8(p));
    const uint16x8_t keep = vdupq_n_u16(0xBF80);  // sign, then bits 13..7
    const uint16x8_t lo = vshlq_n_u16(u, 8);
    const float16x8_t h0 = vreinterpretq_f16_u16(vandq_u16(vsriq_n_u16(lo, lo, 1), keep));
    const float16x8_t h1 = vreinterpretq_f16_u16(vandq_u16(vsriq_n_u16(u, u, 1), keep));
    w[0] = vcvt_f32_f16(vget_low_f16(h0));
    w[1] = vcvt_high_f32_f16(h0);
    w[2] = vcvt_f32_f16(vget_low_f16(h1));
    w[3] = vcvt_high_f32_f16(h1);
  } else if constexpr (SRC == kSrcBf16) {
    const uint16x8_t u = vld1q_u16(reinterpret_cast<const uint16_t*>(p));
    w[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(u), 16));
    w[1] = vreinterpretq_f32_u32(vshll_high_n_u16(u, 16));
  } else {
    w[0] = vld1q_f32(reinterpret_cast<const float*>(p));
  }
}

// C (4 columns at c, `lanes` of them valid) = first ? acc * s : fma(acc, s, C).
inline void update_c(float* c, float32x4_t acc, float s, bool first, int lanes) {
  if (lanes >= 4) {
    vst1q_f32(c, first ? vmulq_n_f32(acc, s) : vfmaq_n_f32(vld1q_f32(c), acc, s));
  } else if (lanes > 0) {
    float t[4] = {0, 0, 0, 0};
    for (int l = 0; l < lanes; ++l) t[l] = c[l];
    const float32x4_t v = first ? vmulq_n_f32(acc, s) : vfmaq_n_f32(vld1q_f32(t), acc, s);
    vst1q_f32(t, v);
    for (int l = 0; l < lanes; ++l) c[l] = t[l];
  }
}

inline int lanes_of(int x, int64_t valid) { return int(std::clamp<int64_t>(valid - 4 * x, 0, 4)); }

// ---- Decode GEMV: MR (1..4) rows, on the fly ------------------------------------------------

// The hot loops live in functions of their own (noinline) that hand their accumulators back
// through memory: inlined into the C update and row dispatch around them, GCC's register
// allocator spilled accumulators inside the loop even where they fit the 32 q registers.

// One k block (rows packed rows from bk) of MR rows, memory-order vectors [y0, y0 + G): acc[r][v]
// for row r, vector y0 + v. a[r] points at row r's activations for the block's first k (FOLD:
// already times 256 for FP8). Prefetches when asked (the block's first sweep).
template <int SRC, int MR, int G, bool FOLD>
__attribute__((noinline)) void gemv_sweep(const float* const* a, const uint8_t* bk, size_t stride, int64_t rows, int y0,
                                          bool prefetch, float32x4_t (*out)[G]) {
  static_assert(G % kVecPerUnit<SRC> == 0, "a column group is whole 16-byte units");
  constexpr int kUnits = G / kVecPerUnit<SRC>;
  constexpr size_t kRowBytes = size_t(kPanelCols) * (SRC == kSrcFp8 ? 1 : SRC == kSrcBf16 ? 2 : 4);
  float32x4_t acc[MR][G];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < G; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  const uint8_t* p = bk + size_t(y0 / kVecPerUnit<SRC>) * 16;
  for (int64_t t = 0; t < rows; ++t, p += stride) {
    if (prefetch) prefetch_row(p, kRowBytes);
    float av[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) av[r] = a[r][t];
#pragma GCC unroll 16
    for (int u = 0; u < kUnits; ++u) {
      float32x4_t w[kVecPerUnit<SRC>];
      decode_unit<SRC>(p + 16 * u, w);
#pragma GCC unroll 16
      for (int v = 0; v < kVecPerUnit<SRC>; ++v) {
        if constexpr (SRC == kSrcFp8 && !FOLD) w[v] = vmulq_n_f32(w[v], 256.0f);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r)
          acc[r][u * kVecPerUnit<SRC> + v] = vfmaq_n_f32(acc[r][u * kVecPerUnit<SRC> + v], w[v], av[r]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < G; ++v) out[r][v] = acc[r][v];
}

template <int SRC, int MR, int G, bool FOLD>
inline void gemv_group(const float* const* a, const uint8_t* bk, size_t stride, int64_t rows, int y0, bool prefetch,
                       float* const* c, const float* s, bool first, int64_t valid) {
  float32x4_t acc[MR][G];
  gemv_sweep<SRC, MR, G, FOLD>(a, bk, stride, rows, y0, prefetch, acc);
  for (int v = 0; v < G; ++v) {
    const int x = col_block<SRC>(y0 + v), lanes = lanes_of(x, valid);
    for (int r = 0; r < MR; ++r) update_c(c[r] + 4 * x, acc[r][v], s[r], first, lanes);
  }
}

template <int SRC, int MR, bool FOLD>
inline void gemv_block(const float* const* a, const uint8_t* bk, size_t stride, int64_t rows, float* const* c, const float* s,
                       bool first, int64_t valid) {
  // Accumulators per sweep: 16 (1 row x 16 vectors), 16 (2 x 8), 12 (3 x 4), 16 (4 x 4).
  constexpr int G = MR == 1 ? 16 : MR == 2 ? 8 : 4;
  for (int y0 = 0; y0 < kVectors; y0 += G) {
    bool any = y0 == 0;  // the first sweep also prefetches
    for (int v = 0; v < G; ++v) any = any || lanes_of(col_block<SRC>(y0 + v), valid) > 0;
    if (any) gemv_group<SRC, MR, G, FOLD>(a, bk, stride, rows, y0, y0 == 0, c, s, first, valid);
  }
}

template <int SRC, int MR>
void gemv_rows(const GemmProblem& g, int64_t i, const uint8_t* panel, size_t stride, const float* sb, float* c,
               int64_t valid) {
  const PackedMatrix& B = *g.b;
  alignas(16) float folded[MR][kScaleBlock];
  float* cr[MR];
  for (int r = 0; r < MR; ++r) cr[r] = c + (i + r) * g.ldc;
  for (int64_t kb0 = 0; kb0 < B.k; kb0 += kScaleBlock) {
    const int64_t kend = std::min(kb0 + kScaleBlock, B.k), kb = kb0 / kScaleBlock, rows = kend - kb0;
    float s[MR];
    const float* a[MR];
    for (int r = 0; r < MR; ++r) {
      s[r] = (g.sa ? g.sa[(i + r) * g.ldsa + kb] : 1.0f) * (sb ? sb[kb] : 1.0f);
      a[r] = g.a + (i + r) * g.lda + kb0;
    }
    const uint8_t* bk = panel + size_t(kb0) * stride;
    if constexpr (SRC == kSrcFp8) {
      // A times 256 is exact whenever it stays finite: |A| < 2^120 (NaN fails the test too).
      // (vmaxq/vmaxvq propagate NaN, and a NaN compares false.)
      bool fold = true;
      for (int r = 0; r < MR; ++r) {
        float32x4_t mx = vdupq_n_f32(0.0f);
        int64_t t = 0;
        for (; t + 4 <= rows; t += 4) {
          const float32x4_t v = vld1q_f32(a[r] + t);
          mx = vmaxq_f32(mx, vabsq_f32(v));
          vst1q_f32(folded[r] + t, vmulq_n_f32(v, 256.0f));
        }
        fold = fold && vmaxvq_f32(mx) < 0x1p120f;
        for (; t < rows; ++t) {
          fold = fold && std::fabs(a[r][t]) < 0x1p120f;
          folded[r][t] = a[r][t] * 256.0f;
        }
      }
      if (fold) {
        const float* fa[MR];
        for (int r = 0; r < MR; ++r) fa[r] = folded[r];
        gemv_block<SRC, MR, true>(fa, bk, stride, rows, cr, s, kb == 0, valid);
      } else {
        gemv_block<SRC, MR, false>(a, bk, stride, rows, cr, s, kb == 0, valid);
      }
    } else {
      gemv_block<SRC, MR, false>(a, bk, stride, rows, cr, s, kb == 0, valid);
    }
  }
}

template <int SRC>
void gemv(const GemmProblem& g, int64_t m0, int64_t m1, const uint8_t* panel, size_t stride, const float* sb, float* c,
          int64_t valid) {
  for (int64_t i = m0; i < m1; i += kOnTheFlyRows) {
    switch (std::min<int64_t>(kOnTheFlyRows, m1 - i)) {
      case 1: gemv_rows<SRC, 1>(g, i, panel, stride, sb, c, valid); break;
      case 2: gemv_rows<SRC, 2>(g, i, panel, stride, sb, c, valid); break;
      case 3: gemv_rows<SRC, 3>(g, i, panel, stride, sb, c, valid); break;
      default: gemv_rows<SRC, 4>(g, i, panel, stride, sb, c, valid); break;
    }
  }
}

// ---- GEMM: fp32 B in column order, MR (1..6) rows x 16 columns ------------------------------

// out[r][v] = the dot products, over `rows` k, of row r (a + r * lda) with the 4 columns at b + 4v
// (b: 16 columns of the first k row; k rows ldb floats apart). The 6-row block holds 24
// accumulators, 4 B vectors and one A broadcast: 29 of the 32 q registers.
template <int MR>
__attribute__((noinline)) void gemm_micro(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t rows,
                                          float32x4_t (*out)[4]) {
  float32x4_t acc[MR][4];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (int64_t t = 0; t < rows; ++t, b += ldb) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const float av = a[r * lda + t];
      acc[r][0] = vfmaq_n_f32(acc[r][0], b0, av);
      acc[r][1] = vfmaq_n_f32(acc[r][1], b1, av);
      acc[r][2] = vfmaq_n_f32(acc[r][2], b2, av);
      acc[r][3] = vfmaq_n_f32(acc[r][3], b3, av);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < 4; ++v) out[r][v] = acc[r][v];
}

// One k range [0, rows) of one scale block: b points at [row][64] fp32 rows `ldb` floats apart.
template <int MR>
inline void gemm_block(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t rows, float* c, int64_t ldc,
                       const float* s, bool first, int64_t valid) {
  for (int cg = 0; cg < kVectors; cg += 4) {
    if (4 * cg >= valid) break;
    float32x4_t acc[MR][4];
    gemm_micro<MR>(a, lda, b + 4 * cg, ldb, rows, acc);
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < 4; ++v) update_c(c + r * ldc + 4 * (cg + v), acc[r][v], s[r], first, lanes_of(cg + v, valid));
  }
}

// Rows [m0, m1) over one scale block kb (k rows [kb0, kb0 + rows)) of fp32 B.
void gemm_rows(const GemmProblem& g, int64_t m0, int64_t m1, int64_t kb0, int64_t rows, const float* b, int64_t ldb,
               const float* sb, float* c, int64_t valid) {
  const int64_t kb = kb0 / kScaleBlock;
  for (int64_t i = m0; i < m1; i += kRowGroup) {
    const int mr = int(std::min<int64_t>(kRowGroup, m1 - i));
    float s[kRowGroup];
    for (int r = 0; r < mr; ++r) s[r] = (g.sa ? g.sa[(i + r) * g.ldsa + kb] : 1.0f) * (sb ? sb[kb] : 1.0f);
    const float* a = g.a + i * g.lda + kb0;
    float* ci = c + i * g.ldc;
    switch (mr) {
      case 1: gemm_block<1>(a, g.lda, b, ldb, rows, ci, g.ldc, s, kb == 0, valid); break;
      case 2: gemm_block<2>(a, g.lda, b, ldb, rows, ci, g.ldc, s, kb == 0, valid); break;
      case 3: gemm_block<3>(a, g.lda, b, ldb, rows, ci, g.ldc, s, kb == 0, valid); break;
      case 4: gemm_block<4>(a, g.lda, b, ldb, rows, ci, g.ldc, s, kb == 0, valid); break;
      case 5: gemm_block<5>(a, g.lda, b, ldb, rows, ci, g.ldc, s, kb == 0, valid); break;
      default: gemm_block<6>(a, g.lda, b, ldb, rows, ci, g.ldc, s, kb == 0, valid); break;
    }
  }
}

// Decodes packed rows [0, rows) of a chunk into scratch, fp32 in column order (FP8: exact e4m3
// values, the 2^-8 of the decode undone by an exact multiply).
template <int SRC>
void convert_chunk(const uint8_t* src, size_t stride, int64_t rows, float* scratch) {
  for (int64_t t = 0; t < rows; ++t, src += stride) {
    prefetch_row(src, stride);
    float* d = scratch + t * kPanelCols;
#pragma GCC unroll 16
    for (int u = 0; u < kVectors / kVecPerUnit<SRC>; ++u) {
      float32x4_t w[kVecPerUnit<SRC>];
      decode_unit<SRC>(src + 16 * u, w);
#pragma GCC unroll 16
      for (int v = 0; v < kVecPerUnit<SRC>; ++v) {
        if constexpr (SRC == kSrcFp8) w[v] = vmulq_n_f32(w[v], 256.0f);
        vst1q_f32(d + 4 * col_block<SRC>(u * kVecPerUnit<SRC> + v), w[v]);
      }
    }
  }
}

template <int SRC>
void panel_impl(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch) {
  const PackedMatrix& B = *g.b;
  const int64_t valid = std::min(kPanelCols, B.n - p * kPanelCols);
  const uint8_t* panel = B.panel(p);
  const size_t stride = B.row_bytes();
  const float* sb = B.panel_scales(p);
  float* c = g.c + p * kPanelCols;
  if (m1 - m0 <= kOnTheFlyRows) {
    gemv<SRC>(g, m0, m1, panel, stride, sb, c, valid);
    return;
  }
  for (int64_t k0 = 0; k0 < B.k; k0 += kChunkK) {
    const int64_t rows = std::min(B.k, k0 + kChunkK) - k0;
    if constexpr (SRC == kSrcF32) {
      // fp32 panels keep columns in order: the register block reads the panel in place.
      gemm_rows(g, m0, m1, k0, rows, reinterpret_cast<const float*>(panel + size_t(k0) * stride), kPanelCols, sb, c,
                valid);
    } else {
      convert_chunk<SRC>(panel + size_t(k0) * stride, stride, rows, scratch);
      gemm_rows(g, m0, m1, k0, rows, scratch, kPanelCols, sb, c, valid);
    }
  }
}

}  // namespace

void gemm_panel_neon(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch) {
  switch (g.b->dtype) {
    case DType::kF8E4M3: panel_impl<kSrcFp8>(g, p, m0, m1, scratch); break;
    case DType::kBF16: panel_impl<kSrcBf16>(g, p, m0, m1, scratch); break;
    default: panel_impl<kSrcF32>(g, p, m0, m1, scratch); break;
  }
}

}  // namespace dsinfer::kernels::detail

#endif  // __aarch64__
