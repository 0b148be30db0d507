#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/vec.h"

namespace dsinfer::kernels {

namespace {

// Running softmax state of one (query, head): max m, sum l of exp(s - m), acc = sum exp(s - m) v.
struct OnlineSoftmax {
  float m = -std::numeric_limits<float>::infinity();
  float l = 0;

  // Folds in a tile of scores; returns the factor by which the old acc must be rescaled and
  // overwrites scores with their exp weights.
  float update(float* scores, int64_t n) {
    float tile_max = *std::max_element(scores, scores + n);
    float new_m = std::max(m, tile_max);
    float rescale = std::exp(m - new_m);  // exp(-inf) = 0 on the first tile
    l *= rescale;
    for (int64_t j = 0; j < n; ++j) l += scores[j] = std::exp(scores[j] - new_m);
    m = new_m;
    return rescale;
  }
};

}  // namespace

void mla_decode(const float* q, int64_t s_q, int64_t heads, const LatentCacheView& cache,
                const int32_t* block_table, int64_t context_len, int64_t dv, float softmax_scale, float* out,
                float* lse) {
  const int64_t d = cache.dim, bs = cache.block_size;
  parallel_for(size_t(s_q), 1, [&](size_t qb, size_t qe) {
    std::vector<float> rows(size_t(bs * d)), scores(size_t(heads * bs)), acc(size_t(heads * dv));
    std::vector<OnlineSoftmax> state(static_cast<size_t>(heads));
    for (size_t i = qb; i < qe; ++i) {
      const int64_t visible = context_len - s_q + int64_t(i) + 1;
      std::fill(acc.begin(), acc.end(), 0.0f);
      std::fill(state.begin(), state.end(), OnlineSoftmax{});
      for (int64_t start = 0; start < visible; start += bs) {
        int64_t n = std::min(bs, visible - start);
        latent_cache_gather(cache, block_table, start, n, rows.data());
        for (int64_t h = 0; h < heads; ++h) {
          const float* qh = q + (int64_t(i) * heads + h) * d;
          float* s = scores.data() + h * bs;
          for (int64_t j = 0; j < n; ++j) s[j] = dot(qh, rows.data() + j * d, d) * softmax_scale;
          float rescale = state[h].update(s, n);
          float* a = acc.data() + h * dv;
          if (rescale != 1.0f) scale_inplace(a, rescale, dv);
          for (int64_t j = 0; j < n; ++j) axpy(s[j], rows.data() + j * d, a, dv);
        }
      }
      for (int64_t h = 0; h < heads; ++h) {
        float inv = 1.0f / state[h].l;
        float* o = out + (int64_t(i) * heads + h) * dv;
        for (int64_t c = 0; c < dv; ++c) o[c] = acc[h * dv + c] * inv;
        if (lse) lse[h * s_q + int64_t(i)] = state[h].m + std::log(state[h].l);
      }
    }
  });
}

void causal_attention(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv,
                      int64_t s_q, int64_t context_len, int64_t heads, int64_t d_qk, int64_t dv,
                      float softmax_scale, float* out, int64_t ldo) {
  constexpr int64_t kTile = 64;
  parallel_for(size_t(s_q * heads), 1, [&](size_t wb, size_t we) {
    std::vector<float> scores(kTile), acc(static_cast<size_t>(dv));
    for (size_t w = wb; w < we; ++w) {
      const int64_t i = int64_t(w) / heads, h = int64_t(w) % heads;
      const int64_t visible = context_len - s_q + i + 1;
      const float* qh = q + i * ldq + h * d_qk;
      OnlineSoftmax st;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t start = 0; start < visible; start += kTile) {
        int64_t n = std::min(kTile, visible - start);
        for (int64_t j = 0; j < n; ++j) scores[j] = dot(qh, k + (start + j) * ldk + h * d_qk, d_qk) * softmax_scale;
        float rescale = st.update(scores.data(), n);
        if (rescale != 1.0f) scale_inplace(acc.data(), rescale, dv);
        for (int64_t j = 0; j < n; ++j) axpy(scores[j], v + (start + j) * ldv + h * dv, acc.data(), dv);
      }
      float* o = out + i * ldo + h * dv;
      for (int64_t c = 0; c < dv; ++c) o[c] = acc[c] / st.l;
    }
  });
}

}  // namespace dsinfer::kernels
