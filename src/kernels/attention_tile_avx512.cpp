// AVX-512 attention tile (attention_tile.h), compiled for that ISA whatever the build's -march
// and called only when cpuid reports it (kernels/cpu_features.h).
#if defined(__x86_64__)

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/simd.h"
#include "kernels/attention_tile.h"
#include "kernels/exp_poly.h"
#include "kernels/prefetch.h"

namespace dsinfer::kernels::detail {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }

// Scores of MR rows x NK keys with MR * NK accumulators over d, each reduced at the end.
// The register blocks' loops carry `unroll` pragmas: left to itself GCC kept the 8 x 3 block's
// accumulators in a stack array (indexed by loop counters it did not unroll) and stored all 24
// every 16 channels.
template <int MR, int NK>
inline void dots(const float* const* q, const float* const* k, int64_t d, float* out, int64_t ldo, PrefetchCursor& pf) {
  __m512 acc[MR][NK];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; c += 16) {
    pf.step();
    const __mmask16 m = tail_mask(d - c);
    __m512 kv[NK];
    #pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) kv[j] = _mm512_maskz_loadu_ps(m, k[j] + c);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      __m512 qv = _mm512_maskz_loadu_ps(m, q[i] + c);
      #pragma GCC unroll 16
      for (int j = 0; j < NK; ++j) acc[i][j] = _mm512_fmadd_ps(qv, kv[j], acc[i][j]);
    }
  }
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) out[i * ldo + j] = hsum(acc[i][j]);
}

// Scores of MR query rows against every key of the tile, NK keys at a time. 8 rows x 3 keys
// (24 accumulators) reads each key row from L2 once per 8 query rows and 3 key vectors per 24
// FMAs; the 4 x 4 block it replaced read keys twice as often and ran at ~L2's bandwidth.
template <int MR>
inline void dots_rows(const TileArgs& a, int64_t r0, float* scores, PrefetchCursor& pf) {
  const float* q[MR];
  for (int i = 0; i < MR; ++i) q[i] = a.q + (r0 + i) * a.ldq;
  constexpr int NK = MR >= 8 ? 3 : 4;
  int64_t t = 0;
  for (; t + NK <= a.n; t += NK) {
    const float* k[NK];
    for (int j = 0; j < NK; ++j) k[j] = a.k + (t + j) * a.ldk;
    dots<MR, NK>(q, k, a.d, scores + r0 * a.n + t, a.n, pf);
  }
  for (; t < a.n; ++t) {
    const float* k[1] = {a.k + t * a.ldk};
    dots<MR, 1>(q, k, a.d, scores + r0 * a.n + t, a.n, pf);
  }
}

// Scores of MR query rows against the tile's (up to 64) keys from the transposed tile a.kt:
// 4 key vectors and MR broadcasts per channel, MR x 4 accumulators, nothing reduced across lanes.
template <int MR>
inline void qk_rows(const TileArgs& a, int64_t r0) {
  __m512 acc[MR][4];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  const float* q = a.q + r0 * a.ldq;
  for (int64_t c = 0; c < a.d; ++c) {
    __m512 kv[4];
    #pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) kv[j] = _mm512_loadu_ps(a.kt + c * 64 + 16 * j);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 qb = _mm512_set1_ps(q[i * a.ldq + c]);
      #pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(qb, kv[j], acc[i][j]);
    }
  }
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const int64_t t = 16 * j;
      if (t < a.n) _mm512_mask_storeu_ps(a.scores + (r0 + i) * a.n + t, tail_mask(a.n - t), acc[i][j]);
    }
}

void qk_all_rows(const TileArgs& a) {
  int64_t r = 0;
  for (; r + 6 <= a.R; r += 6) qk_rows<6>(a, r);
  switch (a.R - r) {
    case 5: qk_rows<5>(a, r); break;
    case 4: qk_rows<4>(a, r); break;
    case 3: qk_rows<3>(a, r); break;
    case 2: qk_rows<2>(a, r); break;
    case 1: qk_rows<1>(a, r); break;
    default: break;
  }
}

// acc[r0 + i, :] += sum_t p[r0 + i, t] * v[t, :], MR rows x 16 * NV columns per register block:
// 8 x 32 reads each value row from L2 once per 8 query rows, 2 vectors per 16 FMAs.
template <int MR, int NV>
inline void pv_rows(const TileArgs& a, TileState& st, int64_t r0) {
  constexpr int64_t W = 16 * NV;
  for (int64_t c = 0; c < a.dv; c += W) {
    __mmask16 m[NV];
    #pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) m[j] = c + 16 * j < a.dv ? tail_mask(a.dv - c - 16 * j) : __mmask16(0);
    __m512 acc[MR][NV];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
      #pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_maskz_loadu_ps(m[j], st.acc + (r0 + i) * a.dv + c + 16 * j);
    for (int64_t t = 0; t < a.n; ++t) {
      const float* v = a.v + t * a.ldv + c;
      __m512 vv[NV];
      #pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) vv[j] = _mm512_maskz_loadu_ps(m[j], v + 16 * j);
      #pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        __m512 p = _mm512_set1_ps(a.scores[(r0 + i) * a.n + t]);
        #pragma GCC unroll 16
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(p, vv[j], acc[i][j]);
      }
    }
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
      #pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) _mm512_mask_storeu_ps(st.acc + (r0 + i) * a.dv + c + 16 * j, m[j], acc[i][j]);
  }
}

void softmax_rows_avx512(const TileArgs& a, TileState& st) {
  for (int64_t r = 0; r < a.R; ++r) {
    float* p = a.scores + r * a.n;
    const int64_t vis = std::clamp<int64_t>(a.visible[r], 0, a.n);
    const __m512 sc = _mm512_set1_ps(a.scale);
    __m512 mx = _mm512_set1_ps(kNegInf);
    for (int64_t t = 0; t < a.n; t += 16) {
      const __mmask16 m = tail_mask(vis - t > 0 ? vis - t : 0);
      __m512 s = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail_mask(a.n - t), p + t), sc);
      mx = _mm512_mask_max_ps(mx, m, mx, s);
    }
    const float new_m = std::max(st.m[r], _mm512_reduce_max_ps(mx));
    const __m512 nm = _mm512_set1_ps(new_m);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t t = 0; t < a.n; t += 16) {
      const __mmask16 m = tail_mask(vis - t > 0 ? vis - t : 0);
      const __mmask16 in = tail_mask(a.n - t);
      __m512 s = _mm512_mul_ps(_mm512_maskz_loadu_ps(in, p + t), sc);
      __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(s, nm)));
      _mm512_mask_storeu_ps(p + t, in, e);
      sum = _mm512_add_ps(sum, e);
    }
    const float rescale = st.m[r] == kNegInf ? 0.0f : exp_poly(st.m[r] - new_m);
    st.l[r] = st.l[r] * rescale + _mm512_reduce_add_ps(sum);
    st.m[r] = new_m;
    if (rescale != 1.0f) {
      float* acc = st.acc + r * a.dv;
      const __m512 rs = _mm512_set1_ps(rescale);
      for (int64_t c = 0; c < a.dv; c += 16) {
        const __mmask16 m = tail_mask(a.dv - c);
        _mm512_mask_storeu_ps(acc + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, acc + c), rs));
      }
    }
  }
}

}  // namespace

void attend_tile_avx512(const TileArgs& a, TileState& st) {
  PrefetchCursor pf{a.prefetch, a.prefetch ? a.prefetch + a.prefetch_bytes : nullptr};
  int64_t r = 0;
  if (a.kt) {
    qk_all_rows(a);
  } else {
    for (; r + 8 <= a.R; r += 8) dots_rows<8>(a, r, a.scores, pf);
    for (; r + 4 <= a.R; r += 4) dots_rows<4>(a, r, a.scores, pf);
    for (; r < a.R; ++r) dots_rows<1>(a, r, a.scores, pf);
  }
  softmax_rows_avx512(a, st);
  r = 0;
  // Prefill tiles (values read in place with a stride of heads x dv) take 6 x 64 blocks, 24
  // FMAs per 10 loads; decode tiles (values gathered, re-read from L2) 8 x 32, which reads each
  // value row once per 8 queries.
  if (a.kt)
    for (; r + 6 <= a.R; r += 6) pv_rows<6, 4>(a, st, r);
  for (; r + 8 <= a.R; r += 8) pv_rows<8, 2>(a, st, r);
  for (; r + 4 <= a.R; r += 4) pv_rows<4, 4>(a, st, r);
  for (; r + 2 <= a.R; r += 2) pv_rows<2, 4>(a, st, r);
  for (; r < a.R; ++r) pv_rows<1, 4>(a, st, r);
}



#pragma GCC pop_options

}  // namespace dsinfer::kernels::detail

#endif  // __x86_64__
