// AVX2 attention tile (attention_tile.h), compiled for that ISA whatever the build's -march and
// called only when cpuid reports it. The register blocks are sized for AVX2's 16 registers:
// scores 6 queries x 2 keys (12 accumulators, reduced across lanes at the end) or, from the
// transposed key tile, 6 queries x 16 keys (nothing reduced across lanes); values 6 queries x
// 16 channels. Same exp as every path (exp_poly.h); sums run in 8-lane order, so results
// agree with the AVX-512 tile to rounding, not bit for bit (cpu_features.h).
#if defined(__x86_64__)

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/simd.h"
#include "kernels/attention_tile.h"
#include "kernels/exp_poly.h"
#include "kernels/prefetch.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace dsinfer::kernels::detail {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Lanes [0, left) set (left clamped to [0, 8]).
inline __m256i lanes_below(int64_t left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::clamp<int64_t>(left, 0, 8))), idx);
}

inline __m256 load_part(const float* p, int64_t left) {
  return left >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes_below(left));
}

inline void store_part(float* p, int64_t left, __m256 v) {
  if (left >= 8) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, lanes_below(left), v);
}

// Scores of MR rows x NK keys over d channels, each reduced across lanes at the end.
template <int MR, int NK>
inline void dots(const float* const* q, const float* const* k, int64_t d, float* out, int64_t ldo, PrefetchCursor& pf) {
  __m256 acc[MR][NK];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t c = 0; c < d; c += 8) {
    if ((c & 15) == 0) pf.step();
    __m256 kv[NK];
    #pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) kv[j] = load_part(k[j] + c, d - c);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256 qv = load_part(q[i] + c, d - c);
      #pragma GCC unroll 16
      for (int j = 0; j < NK; ++j) acc[i][j] = _mm256_fmadd_ps(qv, kv[j], acc[i][j]);
    }
  }
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 16
    for (int j = 0; j < NK; ++j) out[i * ldo + j] = hsum(acc[i][j]);
}

template <int MR>
inline void dots_rows(const TileArgs& a, int64_t r0, PrefetchCursor& pf) {
  const float* q[MR];
  for (int i = 0; i < MR; ++i) q[i] = a.q + (r0 + i) * a.ldq;
  // 6 x 2 (12 accumulators, 2 key and 1 query register: 15 of 16). The 4 x 3 block this
  // replaced needed all 16, and GCC spilled an accumulator to the stack on every 8 channels:
  // a third of the tile's time went to that store in a profile of mla_decode.
  constexpr int NK = MR >= 2 ? 2 : 4;
  int64_t t = 0;
  for (; t + NK <= a.n; t += NK) {
    const float* k[NK];
    for (int j = 0; j < NK; ++j) k[j] = a.k + (t + j) * a.ldk;
    dots<MR, NK>(q, k, a.d, a.scores + r0 * a.n + t, a.n, pf);
  }
  for (; t < a.n; ++t) {
    const float* k[1] = {a.k + t * a.ldk};
    dots<MR, 1>(q, k, a.d, a.scores + r0 * a.n + t, a.n, pf);
  }
}

// Scores of MR query rows against keys [16 j0, 16 j0 + 16) of the transposed tile a.kt.
template <int MR>
inline void qk_rows(const TileArgs& a, int64_t r0, int j0) {
  __m256 acc[MR][2];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const float* q = a.q + r0 * a.ldq;
  const float* kt = a.kt + 16 * j0;
  for (int64_t c = 0; c < a.d; ++c, kt += 64) {
    const __m256 k0 = _mm256_loadu_ps(kt), k1 = _mm256_loadu_ps(kt + 8);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 qb = _mm256_broadcast_ss(q + i * a.ldq + c);
      acc[i][0] = _mm256_fmadd_ps(qb, k0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(qb, k1, acc[i][1]);
    }
  }
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2; ++h) {
      const int64_t t = 16 * j0 + 8 * h;
      if (t < a.n) store_part(a.scores + (r0 + i) * a.n + t, a.n - t, acc[i][h]);
    }
}

template <int MR>
void qk_block(const TileArgs& a, int64_t r0) {
  for (int j0 = 0; 16 * j0 < a.n; ++j0) qk_rows<MR>(a, r0, j0);
}

// Every register block of this tile is 6 query rows (15 of AVX2's 16 registers): runs
// block.template operator()<MR>(r0) over rows [0, R) in blocks of 6, then one of the 1-5 left.
template <typename Block>
void in_row_blocks(int64_t R, Block block) {
  int64_t r = 0;
  for (; r + 6 <= R; r += 6) block.template operator()<6>(r);
  switch (R - r) {
    case 5: block.template operator()<5>(r); break;
    case 4: block.template operator()<4>(r); break;
    case 3: block.template operator()<3>(r); break;
    case 2: block.template operator()<2>(r); break;
    case 1: block.template operator()<1>(r); break;
    default: break;
  }
}

// acc[r0 + i, :] += sum_t p[r0 + i, t] * v[t, :], MR rows x 16 columns per register block.
template <int MR>
inline void pv_rows(const TileArgs& a, TileState& st, int64_t r0) {
  for (int64_t c = 0; c < a.dv; c += 16) {
    const int64_t left0 = a.dv - c, left1 = a.dv - c - 8;
    __m256 acc[MR][2];
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const float* o = st.acc + (r0 + i) * a.dv + c;
      acc[i][0] = load_part(o, left0);
      acc[i][1] = left1 > 0 ? load_part(o + 8, left1) : _mm256_setzero_ps();
    }
    for (int64_t t = 0; t < a.n; ++t) {
      const float* v = a.v + t * a.ldv + c;
      const __m256 v0 = load_part(v, left0), v1 = left1 > 0 ? load_part(v + 8, left1) : _mm256_setzero_ps();
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256 p = _mm256_broadcast_ss(a.scores + (r0 + i) * a.n + t);
        acc[i][0] = _mm256_fmadd_ps(p, v0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(p, v1, acc[i][1]);
      }
    }
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* o = st.acc + (r0 + i) * a.dv + c;
      store_part(o, left0, acc[i][0]);
      if (left1 > 0) store_part(o + 8, left1, acc[i][1]);
    }
  }
}

void softmax_rows(const TileArgs& a, TileState& st) {
  const __m256 sc = _mm256_set1_ps(a.scale);
  for (int64_t r = 0; r < a.R; ++r) {
    float* p = a.scores + r * a.n;
    const int64_t vis = std::clamp<int64_t>(a.visible[r], 0, a.n);
    __m256 mx = _mm256_set1_ps(kNegInf);
    for (int64_t t = 0; t < vis; t += 8) {
      const __m256 s = _mm256_mul_ps(load_part(p + t, a.n - t), sc);
      mx = _mm256_blendv_ps(mx, _mm256_max_ps(mx, s), _mm256_castsi256_ps(lanes_below(vis - t)));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, mx);
    float row_max = kNegInf;
    for (float v : lanes) row_max = std::max(row_max, v);
    const float new_m = std::max(st.m[r], row_max);
    const __m256 nm = _mm256_set1_ps(new_m);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t t = 0; t < a.n; t += 8) {
      const __m256 s = _mm256_mul_ps(load_part(p + t, a.n - t), sc);
      const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(s, nm)), _mm256_castsi256_ps(lanes_below(vis - t)));
      store_part(p + t, a.n - t, e);
      sum = _mm256_add_ps(sum, e);
    }
    const float rescale = st.m[r] == kNegInf ? 0.0f : exp_poly(st.m[r] - new_m);
    st.l[r] = st.l[r] * rescale + hsum(sum);
    st.m[r] = new_m;
    if (rescale != 1.0f) {
      float* acc = st.acc + r * a.dv;
      const __m256 rs = _mm256_set1_ps(rescale);
      for (int64_t c = 0; c < a.dv; c += 8) store_part(acc + c, a.dv - c, _mm256_mul_ps(load_part(acc + c, a.dv - c), rs));
    }
  }
}

}  // namespace

void attend_tile_avx2(const TileArgs& a, TileState& st) {
  PrefetchCursor pf{a.prefetch, a.prefetch ? a.prefetch + a.prefetch_bytes : nullptr};
  if (a.kt) in_row_blocks(a.R, [&]<int MR>(int64_t r) { qk_block<MR>(a, r); });
  else in_row_blocks(a.R, [&]<int MR>(int64_t r) { dots_rows<MR>(a, r, pf); });
  softmax_rows(a, st);
  in_row_blocks(a.R, [&]<int MR>(int64_t r) { pv_rows<MR>(a, st, r); });
}

}  // namespace dsinfer::kernels::detail

#pragma GCC pop_options

#endif  // __x86_64__
