// AVX-512 panel kernels (F + BW + VL + VBMI), compiled for that ISA whatever the build's -march
// and called only when cpuid reports it (kernels/cpu_features.h). Without VBMI (Skylake-SP,
// Cascade Lake) FP8 panels take the AVX2 panel, whose decode needs no byte permutes.
#if defined(__x86_64__)

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/dtype.h"
#include "base/simd.h"
#include "kernels/cpu_features.h"
#include "kernels/gemm_internal.h"
#include "kernels/prefetch.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx2,fma,f16c,bmi2")

namespace dsinfer::kernels::detail {

namespace {

enum Src { kSrcF32, kSrcBf16, kSrcFp8 };
// The e4m3 -> bf16 byte tables: hi/lo byte of the bf16 pattern of each magnitude code 0..127
// (every e4m3 value, subnormals included, is exact in bf16).
struct Tables {
  __m512i hi0, hi1, lo0, lo1, sign, zero;
  __m512i upper;
};

inline Tables make_tables() {
  alignas(64) uint8_t hi[128], lo[128];
  for (int i = 0; i < 128; ++i) {
    uint16_t b = f32_to_bf16(e4m3_to_f32(uint8_t(i)));
    hi[i] = uint8_t(b >> 8);
    lo[i] = uint8_t(b & 0xff);
  }
  Tables t;
  t.hi0 = _mm512_load_si512(hi);
  t.hi1 = _mm512_load_si512(hi + 64);
  t.lo0 = _mm512_load_si512(lo);
  t.lo1 = _mm512_load_si512(lo + 64);
  t.sign = _mm512_set1_epi8(char(0x80));
  t.zero = _mm512_setzero_si512();
  t.upper = _mm512_set1_epi32(int32_t(0xFFFF0000u));
  return t;
}

// One packed k row (64 columns) -> 4 fp32 vectors in column order.
// FP8: two 128-entry table lookups give the bf16 hi/lo bytes, one byte unpack pair makes bf16
// words, and a shift (even words) or a mask (odd words) turns each into fp32: 4 shuffle-port
// uops a row instead of the 8 of unpacking words with zero (the shuffle port bounded the decode
// GEMV's compute; zero-masked two-source byte permutes for the placement measured slower still).
template <int SRC>
inline void decode_row(const uint8_t* p, __m512* w, const Tables& t) {
  if constexpr (SRC == kSrcF32) {
    const float* f = reinterpret_cast<const float*>(p);
    for (int j = 0; j < 4; ++j) w[j] = _mm512_loadu_ps(f + 16 * j);
  } else if constexpr (SRC == kSrcBf16) {
    __m512i v0 = _mm512_loadu_si512(p), v1 = _mm512_loadu_si512(p + 64);
    w[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(t.zero, v0));
    w[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(t.zero, v0));
    w[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(t.zero, v1));
    w[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(t.zero, v1));
  } else {
    __m512i x = _mm512_loadu_si512(p);
    __m512i hi = _mm512_permutex2var_epi8(t.hi0, x, t.hi1);
    __m512i lo = _mm512_permutex2var_epi8(t.lo0, x, t.lo1);
    hi = _mm512_ternarylogic_epi32(hi, x, t.sign, 0xF8);  // hi | (x & 0x80)
    __m512i b0 = _mm512_unpacklo_epi8(lo, hi), b1 = _mm512_unpackhi_epi8(lo, hi);
    w[0] = _mm512_castsi512_ps(_mm512_slli_epi32(b0, 16));
    w[1] = _mm512_castsi512_ps(_mm512_and_si512(b0, t.upper));
    w[2] = _mm512_castsi512_ps(_mm512_slli_epi32(b1, 16));
    w[3] = _mm512_castsi512_ps(_mm512_and_si512(b1, t.upper));
  }
}

// MR rows x 64 columns over k range [k0, k1) (block aligned at k0). b points at packed row k0.
template <int MR, int SRC, bool PF, bool PACKED = false>
void rows_panel(const GemmProblem& g, const float* a, const float* sa, const float* sb, const uint8_t* b,
                size_t b_stride, int64_t k0, int64_t k1, float* c, const __mmask16* mask, const Tables& t) {
  for (int64_t kb0 = k0; kb0 < k1; kb0 += kScaleBlock) {
    const int64_t kend = std::min(kb0 + kScaleBlock, k1), kb = kb0 / kScaleBlock;
    __m512 acc[MR][4];
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_setzero_ps();
    const uint8_t* bk = b + size_t(kb0 - k0) * b_stride;
    for (int64_t kk = kb0; kk < kend; ++kk, bk += b_stride) {
      __m512 w[4];
      if constexpr (PF) prefetch_row(bk, SRC == kSrcFp8 ? 64 : SRC == kSrcBf16 ? 128 : 256);
      decode_row<SRC>(bk, w, t);
      for (int r = 0; r < MR; ++r) {
        __m512 av = _mm512_set1_ps(PACKED ? a[kk * kRowGroup + r] : a[r * g.lda + kk]);
        for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_fmadd_ps(av, w[j], acc[r][j]);
      }
    }
    for (int r = 0; r < MR; ++r) {
      const float s = (sa ? sa[r * g.ldsa + kb] : 1.0f) * (sb ? sb[kb] : 1.0f);
      const __m512 vs = _mm512_set1_ps(s);
      float* cr = c + r * g.ldc;
      for (int j = 0; j < 4; ++j) {
        __m512 v = kb == 0 ? _mm512_mul_ps(acc[r][j], vs)
                           : _mm512_fmadd_ps(acc[r][j], vs, _mm512_maskz_loadu_ps(mask[j], cr + 16 * j));
        _mm512_mask_storeu_ps(cr + 16 * j, mask[j], v);
      }
    }
  }
}

template <int SRC, bool PF, bool PACKED = false>
void rows_dispatch(int mr, const GemmProblem& g, int64_t i, const float* sb, const uint8_t* b, size_t stride,
                   int64_t k0, int64_t k1, float* c, const __mmask16* mask, const Tables& t) {
  const float* a = PACKED ? g.a_packed + (i / kRowGroup) * g.b->k * kRowGroup : g.a + i * g.lda;
  const float* sa = g.sa ? g.sa + i * g.ldsa : nullptr;
  switch (mr) {
    case 1: rows_panel<1, SRC, PF, PACKED>(g, a, sa, sb, b, stride, k0, k1, c, mask, t); break;
    case 2: rows_panel<2, SRC, PF, PACKED>(g, a, sa, sb, b, stride, k0, k1, c, mask, t); break;
    case 3: rows_panel<3, SRC, PF, PACKED>(g, a, sa, sb, b, stride, k0, k1, c, mask, t); break;
    case 4: rows_panel<4, SRC, PF, PACKED>(g, a, sa, sb, b, stride, k0, k1, c, mask, t); break;
    case 5: rows_panel<5, SRC, PF, PACKED>(g, a, sa, sb, b, stride, k0, k1, c, mask, t); break;
    default: rows_panel<6, SRC, PF, PACKED>(g, a, sa, sb, b, stride, k0, k1, c, mask, t); break;
  }
}

template <int SRC>
void panel_impl(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch, const Tables& t) {
  const PackedMatrix& B = *g.b;
  const int64_t valid = std::min(kPanelCols, B.n - p * kPanelCols);
  __mmask16 mask[4];
  for (int j = 0; j < 4; ++j) {
    int64_t v = std::clamp<int64_t>(valid - 16 * j, 0, 16);
    mask[j] = __mmask16((1u << v) - 1);
  }
  const uint8_t* panel = B.panel(p);
  const size_t stride = B.row_bytes();
  const float* sb = B.panel_scales(p);
  float* c = g.c + p * kPanelCols;
  const int64_t m = m1 - m0;
  if (SRC == kSrcF32 || m <= kOnTheFlyRows) {
    // Decode straight from the packed panel: one pass over the weights per (up to 6) rows.
    const int step = SRC == kSrcF32 ? 6 : int(kOnTheFlyRows);
    for (int64_t i = m0; i < m1; i += step) {
      int mr = int(std::min<int64_t>(step, m1 - i));
      rows_dispatch<SRC, true>(mr, g, i, sb, panel, stride, 0, B.k, c + i * g.ldc, mask, t);
    }
    return;
  }
  // Convert the panel to fp32 a chunk at a time, then run every row group over the chunk.
  for (int64_t k0 = 0; k0 < B.k; k0 += kChunkK) {
    const int64_t k1 = std::min(B.k, k0 + kChunkK);
    const uint8_t* src = panel + size_t(k0) * stride;
    for (int64_t kk = k0; kk < k1; ++kk, src += stride) {
      __m512 w[4];
      prefetch_row(src, stride);
      decode_row<SRC>(src, w, t);
      float* d = scratch + (kk - k0) * kPanelCols;
      for (int j = 0; j < 4; ++j) _mm512_store_ps(d + 16 * j, w[j]);
    }
    const uint8_t* buf = reinterpret_cast<const uint8_t*>(scratch);
    for (int64_t i = m0; i < m1; i += kRowGroup) {
      int mr = int(std::min<int64_t>(kRowGroup, m1 - i));
      if (g.a_packed) rows_dispatch<kSrcF32, false, true>(mr, g, i, sb, buf, kPanelCols * sizeof(float), k0, k1, c + i * g.ldc, mask, t);
      else rows_dispatch<kSrcF32, false>(mr, g, i, sb, buf, kPanelCols * sizeof(float), k0, k1, c + i * g.ldc, mask, t);
    }
  }
}

}  // namespace

void gemm_panel_avx512(const GemmProblem& g, int64_t p, int64_t m0, int64_t m1, float* scratch) {
  static const Tables t = make_tables();
  static const bool vbmi = cpu_has_avx512_vbmi();
  if (g.b->dtype == DType::kF8E4M3 && !vbmi) return gemm_panel_avx2(g, p, m0, m1, scratch);
  switch (g.b->dtype) {
    case DType::kF8E4M3: panel_impl<kSrcFp8>(g, p, m0, m1, scratch, t); break;
    case DType::kBF16: panel_impl<kSrcBf16>(g, p, m0, m1, scratch, t); break;
    default: panel_impl<kSrcF32>(g, p, m0, m1, scratch, t); break;
  }
}

}  // namespace dsinfer::kernels::detail

#pragma GCC pop_options

#endif  // __x86_64__
