#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/scratch.h"
#include "base/thread_pool.h"
#include "kernels/attention_tile.h"

namespace dsinfer::kernels {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kOverheadBlocks = 1;  // fixed cost of a split (setup, combine), in KV-block units

struct Split {
  int64_t seq, t0, t1;  // KV token range
  int64_t cost;
};

}  // namespace

void mla_decode(const float* q, int64_t batch, int64_t s_q, int64_t h_q, const LatentCacheView& cache,
                const int32_t* block_table, int64_t max_blocks, const int32_t* cache_seqlens, int64_t dv,
                float softmax_scale, bool causal, float* out, float* lse, int64_t blocks_per_split) {
  const int64_t d = cache.dim, bs = cache.block_size, R = s_q * h_q;
  blocks_per_split = std::max<int64_t>(1, blocks_per_split);
  // The split plan: a function of each sequence's own length only. The calling thread's buffers,
  // reused across calls (one per layer per decode step), like partial_buf below; bound to
  // references so the pool's workers running the lambdas see these, not their own thread_locals.
  static thread_local std::vector<Split> tl_splits;
  static thread_local std::vector<int64_t> tl_first_split;
  static thread_local std::vector<size_t> tl_order;
  std::vector<Split>& splits = tl_splits;
  std::vector<int64_t>& first_split = tl_first_split;
  std::vector<size_t>& order = tl_order;
  splits.clear();
  first_split.assign(size_t(batch) + 1, 0);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t L = cache_seqlens[b], tokens_per_split = blocks_per_split * bs;
    first_split[size_t(b)] = int64_t(splits.size());
    for (int64_t t0 = 0; t0 < L; t0 += tokens_per_split) {
      const int64_t t1 = std::min(L, t0 + tokens_per_split);
      splits.push_back({b, t0, t1, (t1 - t0 + bs - 1) / bs + kOverheadBlocks});
    }
  }
  first_split[size_t(batch)] = int64_t(splits.size());
  const size_t S = splits.size();
  // Partials per split: acc [R, dv], m [R], l [R].
  static thread_local AlignedBuffer<float> partial_buf;
  const size_t per = size_t(R * (dv + 2));
  grow(partial_buf, S * per);
  float* partial = partial_buf.data();
  // Longest first: the pool hands out tasks in order, one at a time.
  order.resize(S);
  for (size_t i = 0; i < S; ++i) order[i] = i;
  // std::sort with the index as tie-break gives stable_sort's order without its temporary buffer
  // (an allocation per call).
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return splits[a].cost != splits[b].cost ? splits[a].cost > splits[b].cost : a < b;
  });

  // Per-thread tile buffers, sized here on the calling thread (base/scratch.h, WorkerSlots).
  static thread_local WorkerSlots<float> tl_rows, tl_scores;
  static thread_local WorkerSlots<int64_t> tl_visible;
  WorkerSlots<float>& rows_slots = tl_rows;
  WorkerSlots<float>& score_slots = tl_scores;
  WorkerSlots<int64_t>& visible_slots = tl_visible;
  rows_slots.grow_each(size_t(bs * d));
  score_slots.grow_each(size_t(R * bs));
  visible_slots.grow_each(size_t(R));

  ThreadPool::global().run(S, [&](size_t task) {
    const Split& sp = splits[order[task]];
    float* rows = rows_slots.mine();
    float* scores = score_slots.mine();
    int64_t* visible = visible_slots.mine();
    float* acc = partial + order[task] * per;
    detail::TileState st{acc + R * dv, acc + R * dv + R, acc};
    std::fill(acc, acc + R * dv, 0.0f);
    std::fill(st.m, st.m + R, kNegInf);
    std::fill(st.l, st.l + R, 0.0f);
    const int64_t L = cache_seqlens[sp.seq];
    const int32_t* table = block_table + sp.seq * max_blocks;
    const float* qs = q + sp.seq * R * d;
    for (int64_t t0 = sp.t0; t0 < sp.t1; t0 += bs) {
      const int64_t n = std::min(bs, sp.t1 - t0);
      // Query i (rows i*h_q .. i*h_q + h_q - 1) sees keys [0, L - s_q + i].
      for (int64_t i = 0; i < s_q; ++i)
        for (int64_t h = 0; h < h_q; ++h) visible[size_t(i * h_q + h)] = (causal ? L - s_q + i + 1 : L) - t0;
      if (visible[size_t(R - 1)] <= 0) continue;  // visible grows along the rows: none sees this block
      const int64_t needed = std::min(n, std::max<int64_t>(visible[size_t(R - 1)], 0));
      latent_cache_gather(cache, table, t0, needed, rows);
      detail::TileArgs a{qs, d, R, d, dv, rows, d, rows, d, needed, visible, softmax_scale, scores};
      if (t0 + bs < sp.t1) {  // the next block of this split, contiguous in the pool
        a.prefetch = static_cast<const uint8_t*>(cache.row(table, t0 + bs));
        a.prefetch_bytes = std::min(bs, sp.t1 - t0 - bs) * cache.row_bytes();
      }
      detail::attend_tile(a, st);
    }
  });

  // Combine, in split order.
  parallel_for(size_t(batch * R), 16, [&](size_t rb, size_t re) {
    for (size_t idx = rb; idx < re; ++idx) {
      const int64_t b = int64_t(idx) / R, r = int64_t(idx) % R;
      float M = kNegInf;
      for (int64_t s = first_split[size_t(b)]; s < first_split[size_t(b) + 1]; ++s)
        M = std::max(M, partial[size_t(s) * per + size_t(R * dv + r)]);
      float Lsum = 0;
      float* o = out + (b * R + r) * dv;
      std::fill(o, o + dv, 0.0f);
      for (int64_t s = first_split[size_t(b)]; s < first_split[size_t(b) + 1]; ++s) {
        const float* p = partial + size_t(s) * per;
        const float m = p[R * dv + r], l = p[R * dv + R + r];
        if (m == kNegInf) continue;
        const float w = std::exp(m - M);
        Lsum += w * l;
        const float* acc = p + r * dv;
        for (int64_t c = 0; c < dv; ++c) o[c] += w * acc[c];
      }
      const float inv = Lsum > 0 ? 1.0f / Lsum : 0.0f;
      for (int64_t c = 0; c < dv; ++c) o[c] *= inv;
      if (lse) {
        const int64_t i = r / h_q, h = r % h_q;
        lse[(b * h_q + h) * s_q + i] = Lsum > 0 ? M + std::log(Lsum) : kNegInf;
      }
    }
  });
}

void mla_prefill(const float* q, int64_t ldq, const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t s_q,
                 int64_t context_len, int64_t heads, int64_t d_qk, int64_t dv, float softmax_scale, float* out,
                 int64_t ldo, float* lse, bool causal) {
  constexpr int64_t kQTile = 16, kKTile = 64;
  const int64_t k_tiles = (context_len + kKTile - 1) / kKTile;
  // With enough queries, every key tile is transposed once ([heads][k_tiles][d_qk][64], zero
  // padded) so the scores run as a register-blocked GEMM, and Q and V are copied head-major
  // ([heads][tokens][d]): in place their rows sit heads x d floats apart (12 KB and 8 KB for
  // bench-v3-small), all in one L1 set, and the value rows of a tile evicted one another. The
  // copies cost about 1/s_q of the attention itself. The calling thread's buffers, reached by
  // the workers through the pointers below.
  static thread_local AlignedBuffer<float> tl_kt, tl_qh, tl_vh;
  // Whatever the number of queries: the transposed tiles reduce each score in another order than
  // the row-major ones, and a prompt's logits must not depend on how many of its tokens shared a
  // chunk (batch invariance; tests/model ChunkBoundariesDoNotChangeLogits). For a short chunk over
  // a long cached context the copies then cost about as much as the attention itself.
  const bool transposed = detail::tile_reads_transposed_keys();
  const int64_t q_tile = transposed ? 3 * kQTile : kQTile, q_tiles = (s_q + q_tile - 1) / q_tile;
  const size_t kt_tile = size_t(d_qk * kKTile);
  float *kt = nullptr, *qh = nullptr, *vh = nullptr;
  if (transposed) {
    grow(tl_kt, size_t(heads * k_tiles) * kt_tile);
    grow(tl_qh, heads * s_q * d_qk);
    grow(tl_vh, heads * context_len * dv);
    kt = tl_kt.data(), qh = tl_qh.data(), vh = tl_vh.data();
    parallel_for(size_t(heads * k_tiles), 1, [&](size_t b, size_t e) {
      for (size_t w = b; w < e; ++w) {
        const int64_t h = int64_t(w) / k_tiles, t0 = (int64_t(w) % k_tiles) * kKTile;
        const int64_t n = std::min(kKTile, context_len - t0);
        float* dst = kt + w * kt_tile;
        for (int64_t t = 0; t < kKTile; ++t) {
          const float* src = k + (t0 + t) * ldk + h * d_qk;
          for (int64_t c = 0; c < d_qk; ++c) dst[c * kKTile + t] = t < n ? src[c] : 0.0f;
        }
        for (int64_t t = t0; t < t0 + n; ++t) std::copy_n(v + t * ldv + h * dv, dv, vh + (h * context_len + t) * dv);
      }
    });
    parallel_for(size_t(heads), 1, [&](size_t b, size_t e) {
      for (size_t h = b; h < e; ++h)
        for (int64_t i = 0; i < s_q; ++i)
          std::copy_n(q + i * ldq + int64_t(h) * d_qk, d_qk, qh + (int64_t(h) * s_q + i) * d_qk);
    });
  }
  static thread_local WorkerSlots<float> tl_acc, tl_ml, tl_scores;
  static thread_local WorkerSlots<int64_t> tl_visible;
  WorkerSlots<float>& acc_slots = tl_acc;
  WorkerSlots<float>& ml_slots = tl_ml;
  WorkerSlots<float>& score_slots = tl_scores;
  WorkerSlots<int64_t>& visible_slots = tl_visible;
  acc_slots.grow_each(size_t(q_tile * dv));
  ml_slots.grow_each(size_t(2 * q_tile));
  score_slots.grow_each(size_t(q_tile * kKTile));
  visible_slots.grow_each(size_t(q_tile));
  parallel_for(size_t(heads * q_tiles), 1, [&](size_t wb, size_t we) {
    float* acc = acc_slots.mine();
    float* ml = ml_slots.mine();
    float* scores = score_slots.mine();
    int64_t* visible = visible_slots.mine();
    for (size_t w = wb; w < we; ++w) {
      const int64_t h = int64_t(w) % heads, i0 = (int64_t(w) / heads) * q_tile;
      const int64_t R = std::min(q_tile, s_q - i0);
      detail::TileState st{ml, ml + q_tile, acc};
      std::fill(acc, acc + R * dv, 0.0f);
      std::fill(st.m, st.m + R, kNegInf);
      std::fill(st.l, st.l + R, 0.0f);
      // Keys the tile's last query sees.
      const int64_t last_visible = causal ? context_len - s_q + i0 + R : context_len;
      for (int64_t t0 = 0; t0 < last_visible; t0 += kKTile) {
        const int64_t n = std::min(kKTile, last_visible - t0);
        for (int64_t r = 0; r < R; ++r)
          visible[size_t(r)] = causal ? context_len - s_q + i0 + r + 1 - t0 : context_len - t0;
        detail::TileArgs a{q + i0 * ldq + h * d_qk, ldq, R, d_qk, dv, k + t0 * ldk + h * d_qk, ldk,
                           v + t0 * ldv + h * dv, ldv, n, visible, softmax_scale, scores};
        if (transposed) {
          a.kt = kt + size_t(h * k_tiles + t0 / kKTile) * kt_tile;
          a.q = qh + (h * s_q + i0) * d_qk;
          a.ldq = d_qk;
          a.v = vh + (h * context_len + t0) * dv;
          a.ldv = dv;
        }
        detail::attend_tile(a, st);
      }
      for (int64_t r = 0; r < R; ++r) {
        float* o = out + (i0 + r) * ldo + h * dv;
        const float inv = 1.0f / st.l[r];
        for (int64_t c = 0; c < dv; ++c) o[c] = acc[r * dv + c] * inv;
        if (lse) lse[h * s_q + i0 + r] = st.l[r] > 0 ? st.m[r] + std::log(st.l[r]) : kNegInf;
      }
    }
  });
}

void attention_merge(float* out, int64_t ldo, float* lse, const float* part, int64_t ld_part, const float* part_lse,
                     int64_t rows, int64_t heads, int64_t dv) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t r = 0; r < rows; ++r) {
      const float a = lse[h * rows + r], b = part_lse[h * rows + r];
      if (b == kNegInf) continue;  // the part saw no key
      const float m = std::max(a, b);
      const float wa = a == kNegInf ? 0.0f : std::exp(a - m), wb = std::exp(b - m), inv = 1.0f / (wa + wb);
      float* o = out + r * ldo + h * dv;
      const float* p = part + r * ld_part + h * dv;
      for (int64_t c = 0; c < dv; ++c) o[c] = (o[c] * wa + p[c] * wb) * inv;
      lse[h * rows + r] = m + std::log(wa + wb);
    }
}

}  // namespace dsinfer::kernels
