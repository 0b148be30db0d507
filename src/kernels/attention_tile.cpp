#include "kernels/attention_tile.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu_features.h"
#include "kernels/exp_poly.h"

namespace dsinfer::kernels::detail {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void softmax_update(const TileArgs& a, TileState& st, int64_t r, float* p, float (*expf_fn)(float)) {
  const int64_t vis = std::clamp<int64_t>(a.visible[r], 0, a.n);
  float mx = kNegInf;
  for (int64_t t = 0; t < vis; ++t) mx = std::max(mx, p[t]);
  const float new_m = std::max(st.m[r], mx);
  float sum = 0;
  for (int64_t t = 0; t < a.n; ++t) {
    p[t] = t < vis && new_m != kNegInf ? expf_fn(p[t] - new_m) : 0.0f;
    sum += p[t];
  }
  const float rescale = st.m[r] == kNegInf ? 0.0f : expf_fn(st.m[r] - new_m);
  st.l[r] = st.l[r] * rescale + sum;
  st.m[r] = new_m;
  float* acc = st.acc + r * a.dv;
  if (rescale != 1.0f)
    for (int64_t c = 0; c < a.dv; ++c) acc[c] *= rescale;
}

void attend_tile_generic(const TileArgs& a, TileState& st) {
  for (int64_t r = 0; r < a.R; ++r) {
    float* p = a.scores + r * a.n;
    const float* q = a.q + r * a.ldq;
    for (int64_t t = 0; t < a.n; ++t) {
      const float* k = a.k + t * a.ldk;
      float s = 0;
      for (int64_t c = 0; c < a.d; ++c) s += q[c] * k[c];
      p[t] = s * a.scale;
    }
    softmax_update(a, st, r, p, exp_poly);
    float* acc = st.acc + r * a.dv;
    for (int64_t t = 0; t < a.n; ++t)
      if (p[t] != 0.0f) {
        const float* v = a.v + t * a.ldv;
        for (int64_t c = 0; c < a.dv; ++c) acc[c] += p[t] * v[c];
      }
  }
}

}  // namespace

bool tile_reads_transposed_keys() {
  const Isa isa = active_isa();
  return isa == Isa::kAvx512 || isa == Isa::kAvx2;
}

void attend_tile(const TileArgs& a, TileState& st) {
  switch (active_isa()) {
#if defined(__x86_64__)
    case Isa::kAvx512: attend_tile_avx512(a, st); return;
    case Isa::kAvx2: attend_tile_avx2(a, st); return;
#endif
    default: attend_tile_generic(a, st); return;
  }
}

}  // namespace dsinfer::kernels::detail
