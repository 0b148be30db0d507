// AVX2 + FMA + F16C panel kernels, for CPUs without AVX-512 (and under DSINFER_ISA=avx2). Same
// reduction order as every other path (gemm_internal.h), so the results are bit-identical.
//
// Decoding a packed 64-column row (packed_matrix.h) into eight 8-float vectors:
//   FP8:  the GEMV places each byte's bits straight into an fp32 (decode_half_bits: the value
//         times 2^-120, undone exactly on A and the block scale). The converting path (and the
//         GEMV for activations outside that trick's range) takes a 32-byte load as 16 words; the
//         even bytes (low in each word) and the odd bytes each become fp16 by placing sign at bit
//         15 and exponent+mantissa at bits 13..7: that fp16 is the e4m3 value times 2^-8,
//         subnormals included, and F16C's vcvtph2ps widens it exactly; times 2^8 is exact.
//   BF16: unpacking each 128-bit lane's words with zero (as the AVX-512 decoder does).
//   F32:  plain loads.
// The vectors hold the panel's columns in a fixed permuted order ("register order"); `Layout`
// maps each (vector, lane) to its column. The bandwidth-bound path (m <= kOnTheFlyRows) keeps
// its accumulators in register order and un-permutes once at the end; the converting path
// writes each decoded vector's two 4-column halves straight to their columns in scratch and
// runs a 6 x 16 register block (12 accumulators of AVX2's 16 registers).
#if defined(__x86_64__)

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/dtype.h"
#include "base/simd.h"
#include "kernels/gemm_internal.h"
#include "kernels/prefetch.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace dsinfer::kernels::detail {

namespace {

// Layout ids: a dtype's decoder, or kSrcFp8Bits for the GEMV's FP8 bit decode (memory order).
enum Src { kSrcF32, kSrcBf16, kSrcFp8, kSrcFp8Bits };

template <int SRC>
constexpr size_t row_bytes() {
  return SRC == kSrcFp8 ? 64 : SRC == kSrcBf16 ? 128 : 256;
}

// Far-prefetch steps (far_prefetch_share) per k row in a sweep of 2 or more: a sweep's share of a 256-byte fp32
// row (4 lines) is 2 lines.
template <int SRC>
constexpr int far_steps_per_row() {
  return row_bytes<SRC>() > 128 ? 2 : 1;
}

// Half h of a packed row -> register-order vectors 4h .. 4h + 3.
template <int SRC>
inline void decode_half(const uint8_t* row, int h, __m256* w) {
  if constexpr (SRC == kSrcFp8) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * h));
    const __m256i even = _mm256_and_si256(_mm256_srai_epi16(_mm256_slli_epi16(x, 8), 1), _mm256_set1_epi16(short(0xBFFF)));
    const __m256i odd = _mm256_and_si256(_mm256_srai_epi16(x, 1), _mm256_set1_epi16(short(0xBF80)));
    w[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(even));
    w[1] = _mm256_cvtph_ps(_mm256_extracti128_si256(even, 1));
    w[2] = _mm256_cvtph_ps(_mm256_castsi256_si128(odd));
    w[3] = _mm256_cvtph_ps(_mm256_extracti128_si256(odd, 1));
  } else if constexpr (SRC == kSrcBf16) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 64 * h));
    const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 64 * h + 32));
    w[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, y0));
    w[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, y0));
    w[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, y1));
    w[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, y1));
  } else {
    const float* f = reinterpret_cast<const float*>(row) + 32 * h;
    for (int i = 0; i < 4; ++i) w[i] = _mm256_loadu_ps(f + 8 * i);
  }
}

// The GEMV's FP8 decode (kSrcFp8Bits): bytes 8v .. 8v + 7 of the row, each sign-extended to 32
// bits, shifted left 20 and masked to sign | exponent+mantissa at bits 26..20: the fp32 whose
// value is the e4m3 value times 2^-120 (normal for every normal e4m3, and the e4m3 subnormals
// land on fp32 subnormals, exactly). Three integer uops per 8 weights, no conversion unit: on
// the development machine (AMD EPYC) one core decodes 21 GB/s this way against 15 GB/s through
// vcvtph2ps. The 2^120 goes onto A (x 2^64) and the block scale (x 2^56); see on_the_fly.
inline void decode_half_bits(const uint8_t* row, int h, __m256* w) {
  const __m256i keep = _mm256_set1_epi32(int32_t(0x87F00000u));
  #pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    const __m256i x = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * (4 * h + i))));
    w[i] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(x, 20), keep));
  }
}

// Which packed position (0..63) lane l of register-order vector v holds, per the decoders above.
int position_of(int src, int v, int l) {
  if (src == kSrcFp8) {  // v = 4 * load + 2 * odd + upper 128 bits; word = 8 * upper + l
    const int load = v / 4, odd = (v / 2) % 2, upper = v % 2;
    return 32 * load + 2 * (8 * upper + l) + odd;
  }
  if (src == kSrcBf16) {  // v = 2 * load + unpackhi; lanes 0-3 from the low 128 bits, 4-7 the high
    const int load = v / 2, hi = v % 2;
    return 16 * load + (l < 4 ? l : 8 + l - 4) + 4 * hi;
  }
  return 8 * v + l;
}

// Column of every (vector, lane), and for the converting path the first column of each
// vector's two 128-bit halves (each half holds 4 consecutive columns; checked at start).
struct Layout {
  int col[kPanelCols];
  int half_col[8][2];
};

Layout make_layout(int src, DType dtype) {
  int col_at[kPanelCols];
  for (int c = 0; c < kPanelCols; ++c) col_at[packed_position(dtype, c)] = c;
  Layout L;
  for (int v = 0; v < 8; ++v)
    for (int l = 0; l < 8; ++l) L.col[8 * v + l] = col_at[position_of(src, v, l)];
  if (src == kSrcFp8Bits) return L;  // used by the GEMV only, which un-permutes lane by lane
  for (int v = 0; v < 8; ++v)
    for (int h = 0; h < 2; ++h) {
      L.half_col[v][h] = L.col[8 * v + 4 * h];
      for (int l = 1; l < 4; ++l)
        if (L.col[8 * v + 4 * h + l] != L.half_col[v][h] + l) __builtin_trap();  // layout and decoder disagree
    }
  return L;
}

const Layout& layout(int src) {
  static const Layout fp8 = make_layout(kSrcFp8, DType::kF8E4M3), bf16 = make_layout(kSrcBf16, DType::kBF16),
                      f32 = make_layout(kSrcF32, DType::kF32), fp8_bits = make_layout(kSrcFp8Bits, DType::kF8E4M3);
  return src == kSrcFp8 ? fp8 : src == kSrcBf16 ? bf16 : src == kSrcFp8Bits ? fp8_bits : f32;
}

// How the FP8 GEMV undoes its decode's scale, exactly. Fast (kBits): weights decode to
// w * 2^-120 (decode_half_bits); A takes 2^64 and the block scale 2^56, so every product is
// a * w * 2^-56 and every partial sum the true one times 2^-56, the same real numbers scaled by
// a power of two: each FMA rounds as on the other paths while those stay normal. They do when
// every nonzero |a| of the rows is in [2^-30, 2^64): products of such a with e4m3 values are
// multiples of 2^-62, so a nonzero partial sum is at least 2^-62 (2^-118 scaled), and
// a * 2^64 cannot overflow; and the block scales sa * sb (both below 2^36) times 2^56 cannot
// either. Rows with any other value (or inf/NaN) take kF16: the vcvtph2ps decode (w * 2^-8)
// with each weight vector multiplied by 2^8, exact for any A.
enum Fp8Mode { kBits, kF16 };

// Every scale below 2^36 (NaN and inf are not).
bool scales_below_2_36(const float* s, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!(std::fabs(s[i]) < 0x1p36f)) return false;
  return true;
}

}  // namespace

bool fp8_bits_decode_fits(const GemmProblem& g, int64_t r0, int64_t r1) {
  const __m256 lo = _mm256_set1_ps(0x1p-30f), hi = _mm256_set1_ps(0x1p64f), zero = _mm256_setzero_ps(),
               abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const int64_t k = g.b->k;
  for (int64_t r = r0; r < r1; ++r) {
    if (g.sa && !scales_below_2_36(g.sa + r * g.ldsa, g.b->k_blocks)) return false;
    const float* a = g.a + r * g.lda;
    __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    int64_t kk = 0;
    for (; kk + 8 <= k; kk += 8) {
      const __m256 x = _mm256_and_ps(_mm256_loadu_ps(a + kk), abs_mask);
      const __m256 in = _mm256_and_ps(_mm256_cmp_ps(x, lo, _CMP_GE_OQ), _mm256_cmp_ps(x, hi, _CMP_LT_OQ));
      ok = _mm256_and_ps(ok, _mm256_or_ps(in, _mm256_cmp_ps(x, zero, _CMP_EQ_OQ)));
    }
    if (_mm256_movemask_ps(ok) != 0xff) return false;
    for (; kk < k; ++kk) {
      const float x = std::fabs(a[kk]);
      if (!(x == 0.0f || (x >= 0x1p-30f && x < 0x1p64f))) return false;
    }
  }
  return true;
}

namespace {

template <int SRC, Fp8Mode MODE>
inline void decode_for_gemv(const uint8_t* row, int h, __m256* w) {
  if constexpr (SRC == kSrcFp8 && MODE == kBits) {
    decode_half_bits(row, h, w);
  } else {
    decode_half<SRC>(row, h, w);
    if constexpr (SRC == kSrcFp8)
      for (int v = 0; v < 4; ++v) w[v] = _mm256_mul_ps(w[v], _mm256_set1_ps(256.0f));
  }
}

template <int SRC, Fp8Mode MODE>
inline __m256 a_broadcast(float a) {
  const __m256 v = _mm256_set1_ps(a);
  if constexpr (SRC == kSrcFp8 && MODE == kBits) return _mm256_mul_ps(v, _mm256_set1_ps(0x1p64f));
  else return v;
}

template <int SRC, Fp8Mode MODE>
constexpr float scale_fix() {
  return SRC == kSrcFp8 && MODE == kBits ? 0x1p56f : 1.0f;
}

template <int SRC, Fp8Mode MODE>
constexpr int gemv_layout() {
  return SRC == kSrcFp8 && MODE == kBits ? kSrcFp8Bits : SRC;
}

// C (in register order, cperm) from one k block's accumulators: kb == 0 ? acc * s : fma(acc, s, C).
inline void fold_block(__m256 acc, float s, int64_t kb, float* cperm) {
  const __m256 vs = _mm256_set1_ps(s);
  _mm256_storeu_ps(cperm, kb == 0 ? _mm256_mul_ps(acc, vs) : _mm256_fmadd_ps(acc, vs, _mm256_loadu_ps(cperm)));
}

// One row over k rows [kb0, kend) of a block, both halves of each k row (8 accumulators, register
// order). Alone (the GEMV's single row) it prefetches as prefetch_row; after other rows' sweeps
// of the block it reads L1 and issues only its share of the far prefetch.
template <int SRC, Fp8Mode MODE, bool ALONE>
inline void one_row_sweep(const float* a, const uint8_t* block, int64_t kb0, int64_t kend, PrefetchCursor* far,
                          __m256* acc) {
  constexpr size_t kRow = row_bytes<SRC>();
  #pragma GCC unroll 8
  for (int v = 0; v < 8; ++v) acc[v] = _mm256_setzero_ps();
  const uint8_t* bk = block;
  for (int64_t kk = kb0; kk < kend; ++kk, bk += kRow) {
    if constexpr (ALONE) prefetch_row(bk, kRow);
    else
      for (int i = 0; i < far_steps_per_row<SRC>(); ++i) far->step();
    const __m256 av = a_broadcast<SRC, MODE>(a[kk]);
    __m256 w[4];
    decode_for_gemv<SRC, MODE>(bk, 0, w);
    #pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[v] = _mm256_fmadd_ps(av, w[v], acc[v]);
    decode_for_gemv<SRC, MODE>(bk, 1, w);
    #pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[4 + v] = _mm256_fmadd_ps(av, w[v], acc[4 + v]);
  }
}

// The bandwidth-bound path: rows [i, i + mr) (mr <= kOnTheFlyRows) decode B straight from the
// packed panel. One row takes both halves of each k row (8 accumulators); more rows go two at a
// time over one half per sweep of a k block (4 accumulators a row), the block then read from L1,
// and an odd last row (or the only one) takes one sweep of both halves. Every sweep carries a share
// of the far prefetch (far_prefetch_share), so memory streams through all of them.
template <int SRC, Fp8Mode MODE>
void on_the_fly(const GemmProblem& g, int64_t i0, int64_t mr, const float* sb, const uint8_t* panel, int64_t valid,
                float* c) {
  const int64_t K = g.b->k;
  constexpr size_t kRow = row_bytes<SRC>();
  alignas(32) float cperm[kOnTheFlyRows][kPanelCols];
  const int64_t pairs = mr / 2;
  const size_t sweeps = size_t(2 * pairs + mr % 2);
  for (int64_t kb0 = 0; kb0 < K; kb0 += kScaleBlock) {
    const int64_t kend = std::min(kb0 + kScaleBlock, K), kb = kb0 / kScaleBlock;
    const size_t block_rows = size_t(kend - kb0);
    const float sbk = sb ? sb[kb] : 1.0f;
    const uint8_t* block = panel + size_t(kb0) * kRow;
    auto row_scale = [&](int64_t r) { return (g.sa ? g.sa[(i0 + r) * g.ldsa + kb] : 1.0f) * sbk * scale_fix<SRC, MODE>(); };
    for (int64_t pair = 0; pair < pairs; ++pair) {
      const float* a0 = g.a + (i0 + 2 * pair) * g.lda;
      const float* a1 = a0 + g.lda;
      for (int h = 0; h < 2; ++h) {
        const size_t sweep = size_t(2 * pair + h);
        PrefetchCursor far = far_prefetch_share(block, block_rows, kRow, sweep, sweeps);
        __m256 acc0[4], acc1[4];
        #pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) acc0[v] = acc1[v] = _mm256_setzero_ps();
        const uint8_t* bk = block;
        for (int64_t kk = kb0; kk < kend; ++kk, bk += kRow) {
          if (sweep == 0) prefetch_row_near(bk, kRow);
          for (int i = 0; i < far_steps_per_row<SRC>(); ++i) far.step();
          __m256 w[4];
          decode_for_gemv<SRC, MODE>(bk, h, w);
          const __m256 x0 = a_broadcast<SRC, MODE>(a0[kk]), x1 = a_broadcast<SRC, MODE>(a1[kk]);
          #pragma GCC unroll 4
          for (int v = 0; v < 4; ++v) {
            acc0[v] = _mm256_fmadd_ps(x0, w[v], acc0[v]);
            acc1[v] = _mm256_fmadd_ps(x1, w[v], acc1[v]);
          }
        }
        for (int r = 0; r < 2; ++r) {
          const float s = row_scale(2 * pair + r);
          #pragma GCC unroll 4
          for (int v = 0; v < 4; ++v) fold_block(r == 0 ? acc0[v] : acc1[v], s, kb, cperm[2 * pair + r] + 8 * (4 * h + v));
        }
      }
    }
    if (mr % 2) {
      const float* a = g.a + (i0 + mr - 1) * g.lda;
      __m256 acc[8];
      if (pairs == 0) {
        one_row_sweep<SRC, MODE, true>(a, block, kb0, kend, nullptr, acc);
      } else {
        PrefetchCursor far = far_prefetch_share(block, block_rows, kRow, sweeps - 1, sweeps);
        one_row_sweep<SRC, MODE, false>(a, block, kb0, kend, &far, acc);
      }
      const float s = row_scale(mr - 1);
      #pragma GCC unroll 8
      for (int v = 0; v < 8; ++v) fold_block(acc[v], s, kb, cperm[mr - 1] + 8 * v);
    }
  }
  const Layout& L = layout(gemv_layout<SRC, MODE>());
  for (int64_t r = 0; r < mr; ++r) {
    float* cr = c + (i0 + r) * g.ldc;
    for (int j = 0; j < kPanelCols; ++j)
      if (L.col[j] < valid) cr[L.col[j]] = cperm[r][j];
  }
}

// MR rows x 16 columns (sub-panel sp) over one k block [kb0, kend) of fp32 B (b: its first row;
// rows of 64 floats).
template <int MR, bool PACKED>
void block_rows(const GemmProblem& g, int64_t i, int sp, const float* sb, const float* b, int64_t kb0, int64_t kend,
                float* c, const __m256i* mask, bool full) {
  const int64_t kb = kb0 / kScaleBlock;
  // Every loop over the register block is unrolled: left to itself GCC kept the accumulators
  // in a stack array and stored all twelve on every k (as it did in the attention tiles).
  __m256 acc[MR][2];
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const float* a = PACKED ? g.a_packed + (i / kRowGroup) * g.b->k * kRowGroup : g.a + i * g.lda;
  const float* bk = b + 16 * sp;
  for (int64_t kk = kb0; kk < kend; ++kk, bk += kPanelCols) {
    const __m256 w0 = _mm256_load_ps(bk), w1 = _mm256_load_ps(bk + 8);
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(PACKED ? a + kk * kRowGroup + r : a + r * g.lda + kk);
      acc[r][0] = _mm256_fmadd_ps(av, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, w1, acc[r][1]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const float s = (g.sa ? g.sa[(i + r) * g.ldsa + kb] : 1.0f) * (sb ? sb[kb] : 1.0f);
    const __m256 vs = _mm256_set1_ps(s);
    float* cr = c + (i + r) * g.ldc + 16 * sp;
    #pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      // Masked loads and stores only where the panel ends inside these 8 columns: vmaskmovps
      // stores are microcoded and slow on AMD cores, and a full panel needs no mask.
      if (full) {
        const __m256 v = kb == 0 ? _mm256_mul_ps(acc[r][h], vs) : _mm256_fmadd_ps(acc[r][h], vs, _mm256_loadu_ps(cr + 8 * h));
        _mm256_storeu_ps(cr + 8 * h, v);
        continue;
      }
      const __m256i m = mask[2 * sp + h];
      const __m256 v = kb == 0 ? _mm256_mul_ps(acc[r][h], vs)
                               : _mm256_fmadd_ps(acc[r][h], vs, _mm256_maskload_ps(cr + 8 * h, m));
      _mm256_maskstore_ps(cr + 8 * h, m, v);
    }
  }
}

template <bool PACKED>
void rows_dispatch(int mr, const GemmProblem& g, int64_t i, int sp, const float* sb, const float* b, int64_t kb0,
                   int64_t kend, float* c, const __m256i* mask, bool full) {
  switch (mr) {
    case 1: block_rows<1, PACKED>(g, i, sp, sb, b, kb0, kend, c, mask, full); break;
    case 2: block_rows<2, PACKED>(g, i, sp, sb, b, kb0, kend, c, mask, full); break;
    case 3: block_rows<3, PACKED>(g, i, sp, sb, b, kb0, kend, c, mask, full); break;
    case 4: block_rows<4, PACKED>(g, i, sp, sb, b, kb0, kend, c, mask, full); break;
    case 5: block_rows<5, PACKED>(g, i, sp, sb, b, kb0, kend, c, mask, full); break;
    default: block_rows<6, PACKED>(g, i, sp, sb, b, kb0, kend, c, mask, full); break;
  }
}

// Decodes k rows [k0, k1) of the panel to fp32 in column order: scratch[(kk - k0) * 64 + col].
template <int SRC>
void decode_chunk(const uint8_t* panel, int64_t k0, int64_t k1, float* scratch) {
  const Layout& L = layout(SRC);
  const uint8_t* src = panel + size_t(k0) * row_bytes<SRC>();
  for (int64_t kk = k0; kk < k1; ++kk, src += row_bytes<SRC>()) {
    prefetch_row(src, row_bytes<SRC>());
    float* d = scratch + (kk - k0) * kPanelCols;
    for (int h = 0; h < 2; ++h) {
      __m256 w[4];
      decode_half<SRC>(src, h, w);
      for (int v = 0; v < 4; ++v) {
        __m256 x = w[v];
        if constexpr (SRC == kSrcFp8) x = _mm256_mul_ps(x, _mm256_set1_ps(256.0f));  // exact: the e4m3 values
        _mm_storeu_ps(d + L.half_col[4 * h + v][0], _mm256_castps256_ps128(x));
        _mm_storeu_ps(d + L.half_col[4 * h + v][1], _mm256_extractf128_ps(x, 1));
      }
    }
  }
}

template <int SRC>
void panel_impl(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch) {
  const PackedMatrix& B = *g.b;
  const int64_t valid = std::min(kPanelCols, B.n - p * kPanelCols);
  const uint8_t* panel = B.panel(p);
  const float* sb = B.panel_scales(p);
  float* c = g.c + p * kPanelCols;
  if (m1 - m0 <= kOnTheFlyRows) {
    for (int64_t i = m0; i < m1; i += kOnTheFlyRows) {
      const int64_t mr = std::min<int64_t>(kOnTheFlyRows, m1 - i);
      // A was checked once per call (fp8_bits_fit); this panel's own scales here.
      const bool bits = g.fp8_bits_fit && (!sb || scales_below_2_36(sb, B.k_blocks));
      if (SRC != kSrcFp8 || bits) on_the_fly<SRC, kBits>(g, i, mr, sb, panel, valid, c);
      else on_the_fly<SRC, kF16>(g, i, mr, sb, panel, valid, c);
    }
    return;
  }
  __m256i mask[8];
  for (int j = 0; j < 8; ++j) {
    alignas(32) int32_t bits[8];
    for (int t = 0; t < 8; ++t) bits[t] = 8 * j + t < valid ? -1 : 0;
    mask[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bits));
  }
  const int subpanels = int((valid + 15) / 16);
  for (int64_t k0 = 0; k0 < B.k; k0 += kChunkK) {
    const int64_t k1 = std::min(B.k, k0 + kChunkK);
    const float* b;  // this chunk as fp32 rows of 64 columns
    if constexpr (SRC == kSrcF32) {
      b = reinterpret_cast<const float*>(panel) + k0 * kPanelCols;
    } else {
      decode_chunk<SRC>(panel, k0, k1, scratch);
      b = scratch;
    }
    for (int64_t kb0 = k0; kb0 < k1; kb0 += kScaleBlock) {
      const int64_t kend = std::min(k1, kb0 + kScaleBlock);
      const float* bb = b + (kb0 - k0) * kPanelCols;
      for (int64_t i = m0; i < m1; i += kRowGroup) {
        const int mr = int(std::min<int64_t>(kRowGroup, m1 - i));
        for (int sp = 0; sp < subpanels; ++sp) {
          const bool full = 16 * (sp + 1) <= valid;
          if (g.a_packed) rows_dispatch<true>(mr, g, i, sp, sb, bb, kb0, kend, c, mask, full);
          else rows_dispatch<false>(mr, g, i, sp, sb, bb, kb0, kend, c, mask, full);
        }
      }
    }
  }
}

}  // namespace

void gemm_panel_avx2(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch) {
  switch (g.b->dtype) {
    case DType::kF8E4M3: panel_impl<kSrcFp8>(g, p, m0, m1, scratch); break;
    case DType::kBF16: panel_impl<kSrcBf16>(g, p, m0, m1, scratch); break;
    default: panel_impl<kSrcF32>(g, p, m0, m1, scratch); break;
  }
}

}  // namespace dsinfer::kernels::detail

#pragma GCC pop_options

#endif  // __x86_64__
