#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/cpu_features.h"
#include "reference.h"
#include "isa_test.h"

namespace dsinfer::kernels {
namespace {

// A batch of sequences in one paged cache of the given dtype; every unused row byte is 0xff
// (NaN in fp32, bf16 and e4m3 alike), so a read outside a sequence's blocks poisons its output.
struct Batch {
  int64_t dim, rope, max_blocks;
  DType dtype;
  std::vector<uint8_t> storage;
  LatentCacheView view;
  std::vector<int32_t> table, lens;
  std::vector<std::vector<float>> rows;  // per sequence, the exact stored values (after rounding)

  Batch(const std::vector<int32_t>& lengths, int64_t dim_, int64_t rope_, DType dt, uint32_t seed)
      : dim(dim_), rope(rope_), dtype(dt), lens(lengths) {
    max_blocks = 1;
    int64_t total = 0;
    for (int32_t L : lens) total += (L + 63) / 64, max_blocks = std::max<int64_t>(max_blocks, (L + 63) / 64);
    const int64_t blocks = 2 * total + 3;
    view = {nullptr, dt, 64, dim, rope};
    storage.assign(size_t(blocks * 64 * view.row_bytes()), 0xff);
    view.base = storage.data();
    table.assign(size_t(lens.size() * max_blocks), -1);
    int32_t next = int32_t(blocks - 1);
    for (size_t b = 0; b < lens.size(); ++b) {
      for (int64_t j = 0; j < (lens[b] + 63) / 64; ++j) table[b * max_blocks + j] = next, next -= 2;  // scattered
      auto v = ref::randn(size_t(lens[b] * dim), uint32_t(seed + b));
      for (int64_t t = 0; t < lens[b]; ++t) latent_cache_store(view, table.data() + b * max_blocks, t, v.data() + t * dim);
      std::vector<float> back(size_t(lens[b] * dim));
      latent_cache_gather(view, table.data() + b * max_blocks, 0, lens[b], back.data());
      rows.push_back(back);
    }
  }
};

// The definition, in double, over the stored values.
void reference(const Batch& c, const std::vector<float>& q, int64_t s_q, int64_t h, int64_t dv, float scale,
               std::vector<double>& out, std::vector<double>& lse) {
  const int64_t B = int64_t(c.lens.size()), d = c.dim;
  out.assign(size_t(B * s_q * h * dv), 0);
  lse.assign(size_t(B * h * s_q), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < s_q; ++i)
      for (int64_t hh = 0; hh < h; ++hh) {
        const int64_t visible = c.lens[size_t(b)] - s_q + i + 1;
        const float* qr = q.data() + ((b * s_q + i) * h + hh) * d;
        const auto& rows = c.rows[size_t(b)];
        auto score = [&](int64_t j) {
          double s = 0;
          for (int64_t x = 0; x < d; ++x) s += double(qr[x]) * rows[size_t(j * d + x)];
          return s * scale;
        };
        auto o = ref::attend(visible, dv, score, [&](int64_t j, int64_t x) { return double(rows[size_t(j * d + x)]); });
        std::copy(o.begin(), o.end(), out.begin() + ((b * s_q + i) * h + hh) * dv);
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, score(j));
        for (int64_t j = 0; j < visible; ++j) sum += std::exp(score(j) - mx);
        lse[size_t((b * h + hh) * s_q + i)] = mx + std::log(sum);
      }
}

class MlaDecode : public ::testing::TestWithParam<std::tuple<DType, Isa>> {
 protected:
  void SetUp() override { force_isa_or_skip(std::get<1>(GetParam())); }
  void TearDown() override { reset_isa_override(); }
};

TEST_P(MlaDecode, BatchedSplitAndUnsplitMatchDefinition) {
  const DType dt = std::get<0>(GetParam());
  const int64_t dim = 576, rope = 64, dv = 512, h = 4;
  for (int64_t s_q : {1L, 3L}) {
    Batch c({int32_t(s_q), 63, 64, 65, 300, 700}, dim, rope, dt, 7);  // s_q <= length, as FlashMLA requires
    const int64_t B = int64_t(c.lens.size());
    auto q = ref::randn(size_t(B * s_q * h * dim), 11, 0.05f);
    std::vector<double> want, want_lse;
    const float scale = 0.0416f;
    reference(c, q, s_q, h, dv, scale, want, want_lse);
    std::vector<float> split_out, split_lse;
    for (int64_t bps : {1L, 3L, 1000L}) {
      std::vector<float> out(size_t(B * s_q * h * dv), -1), lse(size_t(B * h * s_q), -1);
      mla_decode(q.data(), B, s_q, h, c.view, c.table.data(), c.max_blocks, c.lens.data(), dv, scale, true, out.data(),
                 lse.data(), bps);
      for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 2e-5) << "bps " << bps << " at " << i;
      for (size_t i = 0; i < lse.size(); ++i) ASSERT_NEAR(lse[i], want_lse[i], 2e-5) << "lse at " << i;
      if (bps == 1) split_out = out, split_lse = lse;
      if (bps == 1000) {  // split vs unsplit: equal within rounding
        for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], split_out[i], 1e-6);
      }
    }
  }
}

// A sequence's result does not depend on which other sequences share the call.
TEST_P(MlaDecode, SequenceResultIsBatchInvariant) {
  const DType dt = std::get<0>(GetParam());
  const int64_t dim = 96, rope = 32, dv = 64, h = 3;
  Batch c({130, 5, 400}, dim, rope, dt, 3);
  auto q = ref::randn(size_t(3 * h * dim), 5, 0.3f);
  std::vector<float> all(size_t(3 * h * dv));
  mla_decode(q.data(), 3, 1, h, c.view, c.table.data(), c.max_blocks, c.lens.data(), dv, 0.1f, true, all.data(), nullptr);
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<float> one(size_t(h * dv));
    mla_decode(q.data() + b * h * dim, 1, 1, h, c.view, c.table.data() + b * c.max_blocks, c.max_blocks,
               c.lens.data() + b, dv, 0.1f, true, one.data(), nullptr);
    for (int64_t i = 0; i < h * dv; ++i) ASSERT_EQ(one[size_t(i)], all[size_t(b * h * dv + i)]);
  }
}

// A decode step's token and its drafts attend as one query group (s_q = 1 + drafts;
// model/attention.h, QueryGroup). Speculative decoding's greedy output equals decoding without
// drafts only if every row's result is, bit for bit, that of a decode step of its own. The
// lengths put a group's rows on both sides of a KV block (64 tokens) and of a split (4 blocks):
// its earlier rows then see nothing of the last block or split, which must not touch them.
TEST_P(MlaDecode, EachRowOfAQueryGroupEqualsItsOwnDecodeStepBitForBit) {
  const DType dt = std::get<0>(GetParam());
  const int64_t dim = 80, rope = 16, dv = 64, h = 4;
  for (int64_t s_q : {2L, 3L, 4L}) {
    Batch c({int32_t(s_q), 64, 65, 66, 129, 256, 257, 258, 259, 300}, dim, rope, dt, uint32_t(s_q));
    const int64_t B = int64_t(c.lens.size());
    auto q = ref::randn(size_t(B * s_q * h * dim), uint32_t(20 + s_q), 0.3f);
    std::vector<float> out(size_t(B * s_q * h * dv)), lse(size_t(B * h * s_q));
    mla_decode(q.data(), B, s_q, h, c.view, c.table.data(), c.max_blocks, c.lens.data(), dv, 0.125f, true, out.data(),
               lse.data());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < s_q; ++i) {
        const int32_t own_len = c.lens[size_t(b)] - int32_t(s_q - 1 - i);
        std::vector<float> own(size_t(h * dv)), own_lse(static_cast<size_t>(h));
        mla_decode(q.data() + (b * s_q + i) * h * dim, 1, 1, h, c.view, c.table.data() + b * c.max_blocks,
                   c.max_blocks, &own_len, dv, 0.125f, true, own.data(), own_lse.data());
        const float* row = out.data() + (b * s_q + i) * h * dv;
        ASSERT_EQ(std::memcmp(row, own.data(), own.size() * sizeof(float)), 0)
            << "s_q " << s_q << ", length " << c.lens[size_t(b)] << ", row " << i;
        for (int64_t hh = 0; hh < h; ++hh)
          ASSERT_EQ(std::memcmp(&lse[size_t((b * h + hh) * s_q + i)], &own_lse[size_t(hh)], sizeof(float)), 0)
              << "lse: s_q " << s_q << ", length " << c.lens[size_t(b)] << ", row " << i << ", head " << hh;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Caches, MlaDecode,
                         ::testing::Combine(::testing::Values(DType::kBF16, DType::kF32, DType::kF8E4M3),
                                            DSINFER_ALL_ISAS),
                         [](const auto& info) {
                           return std::string(dtype_name(std::get<0>(info.param))) + "_" + isa_name(std::get<1>(info.param));
                         });

TEST(MlaDecodeFp8, LatentWithinOneE4m3StepAndRopeBf16) {
  LatentCacheView v{nullptr, DType::kF8E4M3, 64, 576, 64};
  EXPECT_EQ(v.row_bytes(), 656);  // FlashMLA's FP8 row
  std::vector<uint8_t> buf(size_t(64 * v.row_bytes()));
  v.base = buf.data();
  int32_t table[] = {0};
  auto row = ref::randn(576, 1);
  for (int i = 128; i < 256; ++i) row[size_t(i)] = 0;  // an all-zero block: scale clamps at 1e-4/448
  row[3] = 448.0f * 3;
  latent_cache_store(v, table, 9, row.data());
  std::vector<float> back(576);
  latent_cache_gather(v, table, 9, 1, back.data());
  for (int i = 0; i < 512; ++i) {
    float amax = 0;
    for (int j = i / 128 * 128; j < i / 128 * 128 + 128; ++j) amax = std::max(amax, std::fabs(row[size_t(j)]));
    ASSERT_NEAR(back[size_t(i)], row[size_t(i)], std::fabs(row[size_t(i)]) / 16 + amax / 448 / 64 + 1e-12) << i;
  }
  for (int i = 512; i < 576; ++i) ASSERT_EQ(back[size_t(i)], round_to_bf16(row[size_t(i)]));
}

}  // namespace
}  // namespace dsinfer::kernels
