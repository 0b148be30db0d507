#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <cmath>

#include "isa_test.h"
#include "reference.h"

namespace dsinfer::kernels {
namespace {

class AttentionIsa : public IsaTest {};

// A paged cache whose unused rows hold NaN: any read outside a sequence's blocks poisons the output.
struct PagedCache {
  std::vector<float> rows;
  LatentCacheView view;
  std::vector<int32_t> table;
  PagedCache(int64_t blocks, int64_t dim, int64_t len, uint32_t seed) {
    rows.assign(size_t(blocks * 64 * dim), std::nanf(""));
    view = {rows.data(), DType::kF32, 64, dim};
    // Scatter the sequence over non-contiguous blocks in reverse order.
    for (int64_t b = 0; b < (len + 63) / 64; ++b) table.push_back(int32_t(blocks - 1 - 2 * b));
    auto v = ref::randn(size_t(len * dim), seed);
    for (int64_t t = 0; t < len; ++t) latent_cache_store(view, table.data(), t, v.data() + t * dim);
  }
  float at(int64_t t, int64_t c) const {
    return rows[size_t((table[size_t(t / 64)] * 64 + t % 64) * view.dim + c)];
  }
};

TEST_P(AttentionIsa, MlaDecodeMatchesNaiveSoftmaxWithBottomRightCausality) {
  const int64_t dim = 40, dv = 32, heads = 3;
  for (auto [len, s_q] : {std::pair{1L, 1L}, {63L, 1L}, {64L, 2L}, {200L, 5L}}) {
    PagedCache c(12, dim, len, uint32_t(len));
    auto q = ref::randn(size_t(s_q * heads * dim), 99);
    std::vector<float> out(size_t(s_q * heads * dv)), lse(size_t(heads * s_q));
    const float scale = 0.3f;
    const int32_t seqlen = int32_t(len);
    mla_decode(q.data(), 1, s_q, heads, c.view, c.table.data(), (len + 63) / 64, &seqlen, dv, scale, true, out.data(),
               lse.data());
    for (int64_t i = 0; i < s_q; ++i)
      for (int64_t h = 0; h < heads; ++h) {
        int64_t visible = len - s_q + i + 1;
        const float* qh = q.data() + (i * heads + h) * dim;
        auto score = [&](int64_t j) {
          double s = 0;
          for (int64_t d = 0; d < dim; ++d) s += double(qh[d]) * c.at(j, d);
          return s * scale;
        };
        auto want = ref::attend(visible, dv, score, [&](int64_t j, int64_t d) { return double(c.at(j, d)); });
        for (int64_t d = 0; d < dv; ++d)
          ASSERT_NEAR(out[size_t((i * heads + h) * dv + d)], want[size_t(d)], 1e-5) << len << " " << i << " " << h;
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, score(j));
        for (int64_t j = 0; j < visible; ++j) sum += std::exp(score(j) - mx);
        EXPECT_NEAR(lse[size_t(h * s_q + i)], mx + std::log(sum), 1e-4);
      }
  }
}

// 70 queries take the transposed-key (GEMM) score path, 5 the dot-product one.
TEST_P(AttentionIsa, CausalAttentionMatchesNaiveSoftmax) {
  for (int64_t s_q : {70L, 5L}) {
  const int64_t heads = 2, dqk = 24, dv = 16, ctx = 150;
  auto q = ref::randn(size_t(s_q * heads * dqk), 1), k = ref::randn(size_t(ctx * heads * dqk), 2),
       v = ref::randn(size_t(ctx * heads * dv), 3);
  std::vector<float> out(size_t(s_q * heads * dv));
  mla_prefill(q.data(), heads * dqk, k.data(), heads * dqk, v.data(), heads * dv, s_q, ctx, heads, dqk, dv, 0.2f,
              out.data(), heads * dv);
  for (int64_t i = 0; i < s_q; ++i)
    for (int64_t h = 0; h < heads; ++h) {
      auto want = ref::attend(
          ctx - s_q + i + 1, dv,
          [&](int64_t j) {
            double s = 0;
            for (int64_t d = 0; d < dqk; ++d) s += double(q[size_t((i * heads + h) * dqk + d)]) * k[size_t((j * heads + h) * dqk + d)];
            return 0.2 * s;
          },
          [&](int64_t j, int64_t d) { return double(v[size_t((j * heads + h) * dv + d)]); });
      for (int64_t d = 0; d < dv; ++d) ASSERT_NEAR(out[size_t((i * heads + h) * dv + d)], want[size_t(d)], 1e-5);
    }
  }
}

// Non-causal prefill over a key range with its lse, and the merge of two disjoint key ranges,
// against the naive softmax over all keys: how a chunk's attention over a long cached context
// is assembled tile by tile.
TEST_P(AttentionIsa, PrefillLseAndMergeOfKeyRangesMatchNaiveSoftmax) {
  const int64_t heads = 3, dqk = 24, dv = 16, ctx = 200, s_q = 37, split = 83;
  auto q = ref::randn(size_t(s_q * heads * dqk), 4), k = ref::randn(size_t(ctx * heads * dqk), 5),
       v = ref::randn(size_t(ctx * heads * dv), 6);
  auto score = [&](int64_t i, int64_t h, int64_t j) {
    double s = 0;
    for (int64_t d = 0; d < dqk; ++d) s += double(q[size_t((i * heads + h) * dqk + d)]) * k[size_t((j * heads + h) * dqk + d)];
    return 0.3 * s;
  };
  // Part A: keys [0, split), every query sees all of them. Part B: keys [split, ctx), causal.
  std::vector<float> a(size_t(s_q * heads * dv)), b(a.size()), lse_a(size_t(heads * s_q)), lse_b(lse_a.size());
  mla_prefill(q.data(), heads * dqk, k.data(), heads * dqk, v.data(), heads * dv, s_q, split, heads, dqk, dv, 0.3f,
              a.data(), heads * dv, lse_a.data(), false);
  mla_prefill(q.data(), heads * dqk, k.data() + split * heads * dqk, heads * dqk, v.data() + split * heads * dv,
              heads * dv, s_q, ctx - split, heads, dqk, dv, 0.3f, b.data(), heads * dv, lse_b.data(), true);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < s_q; ++i) {
      double m = -1e300, sum = 0;
      for (int64_t j = 0; j < split; ++j) m = std::max(m, score(i, h, j));
      for (int64_t j = 0; j < split; ++j) sum += std::exp(score(i, h, j) - m);
      ASSERT_NEAR(lse_a[size_t(h * s_q + i)], m + std::log(sum), 1e-4) << "non-causal lse";
    }
  attention_merge(a.data(), heads * dv, lse_a.data(), b.data(), heads * dv, lse_b.data(), s_q, heads, dv);
  for (int64_t i = 0; i < s_q; ++i)
    for (int64_t h = 0; h < heads; ++h) {
      auto want = ref::attend(
          ctx - s_q + i + 1, dv, [&](int64_t j) { return score(i, h, j); },
          [&](int64_t j, int64_t d) { return double(v[size_t((j * heads + h) * dv + d)]); });
      for (int64_t d = 0; d < dv; ++d) ASSERT_NEAR(a[size_t((i * heads + h) * dv + d)], want[size_t(d)], 1e-5) << i << " " << h;
    }
}

TEST_P(AttentionIsa, Bf16CacheRoundsOnStore) {
  std::vector<uint16_t> rows(64 * 4);
  LatentCacheView v{rows.data(), DType::kBF16, 64, 4};
  int32_t table[] = {0};
  float row[4] = {1.0f, 1.00390625f, -3.14159f, 1e-3f};
  latent_cache_store(v, table, 5, row);
  float back[4];
  latent_cache_gather(v, table, 5, 1, back);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(back[i], round_to_bf16(row[i]));
}

DSINFER_ISA_SUITE(AttentionIsa);

}  // namespace
}  // namespace dsinfer::kernels
