#include "cache/block_manager.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <numeric>

#include "base/error.h"
#include "cache/block_hash.h"

namespace dsinfer::cache {
namespace {

constexpr int64_t kBs = 64;

std::vector<int32_t> seq_tokens(int64_t n, int32_t start = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

struct Fixture : ::testing::Test {
  KvPool pool{kernels::KvCacheSpec{2, 8, 0, DType::kF32}, 8};
  BlockManager bm{pool, 42};
};

TEST_F(Fixture, AllocateReleaseCountsEveryBlock) {
  std::vector<int32_t> a, b;
  ASSERT_TRUE(bm.allocate(5, a));
  EXPECT_EQ(bm.stats().used, 5);
  EXPECT_FALSE(bm.allocate(4, b));  // all or nothing
  EXPECT_TRUE(b.empty());
  ASSERT_TRUE(bm.allocate(3, b));
  EXPECT_EQ(bm.available(), 0);
  bm.release(a);
  bm.release(b);
  EXPECT_TRUE(a.empty());
  auto s = bm.stats();
  EXPECT_EQ(s.used, 0);
  EXPECT_EQ(s.free, 8);
  EXPECT_EQ(s.cached, 0);
}

TEST_F(Fixture, DoubleReleaseIsCaught) {
  std::vector<int32_t> a;
  ASSERT_TRUE(bm.allocate(1, a));
  std::vector<int32_t> copy = a;
  bm.release(a);
  EXPECT_THROW(bm.release(copy), Error);
}

TEST_F(Fixture, CommittedPrefixIsSharedAndRefCounted) {
  auto toks = seq_tokens(3 * kBs + 10);
  std::vector<int32_t> t1;
  ASSERT_TRUE(bm.allocate(4, t1));
  bm.commit(toks.data(), int64_t(toks.size()), t1);
  EXPECT_EQ(std::count_if(t1.begin(), t1.end(), [&](int32_t b) { return bm.key(b) != 0; }), 3);  // the partial fourth block is not indexed

  std::vector<int32_t> t2;
  EXPECT_EQ(bm.match_prefix(toks.data(), int64_t(toks.size()), 1, t2), 3 * kBs);
  ASSERT_EQ(t2.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(t2[size_t(i)], t1[size_t(i)]);
    EXPECT_EQ(bm.ref_count(t1[size_t(i)]), 2);
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bm.key(t2[size_t(i)]), bm.key(t1[size_t(i)]));  // one key, on the block
  bm.release(t1);
  EXPECT_EQ(bm.stats().used, 3);
  bm.release(t2);
  auto s = bm.stats();
  EXPECT_EQ(s.used, 0);
  EXPECT_EQ(s.cached, 3);
  // Cached blocks come back on a later hit.
  std::vector<int32_t> t3;
  EXPECT_EQ(bm.match_prefix(toks.data(), int64_t(toks.size()), 1, t3), 3 * kBs);
  bm.release(t3);
}

TEST_F(Fixture, MatchLeavesTokensToCompute) {
  auto toks = seq_tokens(2 * kBs);
  std::vector<int32_t> t;
  ASSERT_TRUE(bm.allocate(2, t));
  bm.commit(toks.data(), 2 * kBs, t);
  bm.release(t);
  // Exactly two cached blocks, but the last token must be computed to get its logits: the second
  // block is copied (copy-on-write) and only its last row is left to compute.
  EXPECT_EQ(bm.match_prefix(toks.data(), 2 * kBs, 1, t), 2 * kBs - 1);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(bm.ref_count(t[0]), 1);
  EXPECT_EQ(bm.stats().cached, 1);  // the original second block stays cached, unshared
  // One shared, keyed block; the private copy has no key until it is committed.
  EXPECT_NE(bm.key(t[0]), 0u);
  EXPECT_EQ(bm.key(t[1]), 0u);
  bm.release(t);
  EXPECT_EQ(bm.stats().used, 0);
  // With no block to copy into, the last block is recomputed whole.
  KvPool small(kernels::KvCacheSpec{1, 4, 0, DType::kF32}, 2);
  BlockManager one(small, 1);
  std::vector<int32_t> a;
  ASSERT_TRUE(one.allocate(2, a));
  one.commit(toks.data(), 2 * kBs, a);
  std::vector<int32_t> b;
  EXPECT_EQ(one.match_prefix(toks.data(), 2 * kBs, 1, b), kBs);
  one.release(a);
  one.release(b);
}

TEST_F(Fixture, LookaheadRecomputesTheLastTokenOfAHitEndingAtABlock) {
  // With the MTP module's layer a row depends on the next token too: a hit that ends at a block
  // boundary (here 2 blocks of a longer prompt that diverges after them) copies its last block
  // without the last row, which is left to compute. Rows copied hold the original's bytes.
  auto toks = seq_tokens(2 * kBs);
  std::vector<int32_t> t;
  ASSERT_TRUE(bm.allocate(2, t));
  for (int64_t pos = 0; pos < 2 * kBs; ++pos)  // layer 1's rows: 8 floats each, numbered
    for (int64_t c = 0; c < 8; ++c) static_cast<float*>(pool.view().layer(1).row(t.data(), pos))[c] = float(pos * 8 + c);
  bm.commit(toks.data(), 2 * kBs, t);
  bm.release(t);
  auto longer = seq_tokens(3 * kBs);
  longer[2 * kBs] = 999999;  // not the token the cached rows were written for
  bm.set_lookahead(true);
  std::vector<int32_t> hit;
  EXPECT_EQ(bm.match_prefix(longer.data(), int64_t(longer.size()), 1, hit), 2 * kBs - 1);
  ASSERT_EQ(hit.size(), 2u);
  EXPECT_NE(bm.key(hit[0]), 0u);  // the first block shared as it is
  EXPECT_EQ(bm.key(hit[1]), 0u);  // the second a private copy
  const kernels::KvCacheView v = pool.view();
  for (int64_t pos = kBs; pos < 2 * kBs - 1; ++pos)
    EXPECT_EQ(static_cast<const float*>(v.layer(1).row(hit.data(), pos))[3], float(pos * 8 + 3)) << pos;
  bm.release(hit);
  // Off (no such layer): the two blocks are shared whole.
  bm.set_lookahead(false);
  EXPECT_EQ(bm.match_prefix(longer.data(), int64_t(longer.size()), 1, hit), 2 * kBs);
  bm.release(hit);
}

TEST_F(Fixture, DifferentTokensOrParentsMiss) {
  auto a = seq_tokens(2 * kBs);
  std::vector<int32_t> t;
  ASSERT_TRUE(bm.allocate(2, t));
  bm.commit(a.data(), 2 * kBs, t);
  bm.release(t);
  auto b = a;
  b[5] = 999;  // the first block differs, so the second (same tokens) must miss too: chained keys
  EXPECT_EQ(bm.match_prefix(b.data(), 2 * kBs + 1, 1, t), 0);
  auto c = a;
  c[kBs + 3] = 999;  // only the second block differs
  EXPECT_EQ(bm.match_prefix(c.data(), 2 * kBs + 1, 1, t), kBs);
  bm.release(t);
}

TEST_F(Fixture, BlocksLoadedFromDiskAreCachedHitsAndCommitsAreRecordedForWriteThrough) {
  bm.record_commits(true);
  auto t = seq_tokens(3 * kBs + 5);
  const auto keys = prefix_keys(t.data(), int64_t(t.size()), kBs, 42, 3);
  EXPECT_EQ(bm.cached_prefix_blocks(keys.data(), t.data(), 3), 0);
  // The disk gives the first two blocks: their rows are written through `fill` into fresh blocks.
  std::vector<int32_t> filled;
  for (int b = 0; b < 2; ++b)
    ASSERT_TRUE(bm.insert_loaded(keys[size_t(b)], t.data() + b * kBs, [&](int32_t block) { filled.push_back(block); }));
  ASSERT_EQ(filled.size(), 2u);
  EXPECT_EQ(bm.stats().cached, 2);
  EXPECT_TRUE(bm.insert_loaded(keys[0], t.data(), [&](int32_t) { ADD_FAILURE() << "already indexed: nothing loads"; }));
  EXPECT_EQ(bm.cached_prefix_blocks(keys.data(), t.data(), 3), 2);
  std::vector<int32_t> table;
  EXPECT_EQ(bm.match_prefix(t.data(), int64_t(t.size()), 1, table), 2 * kBs);
  EXPECT_EQ(table, filled);
  std::vector<int32_t> committed;
  bm.take_committed(committed);
  EXPECT_TRUE(committed.empty()) << "loaded blocks are on disk already";
  // The third block is computed and committed: recorded, once.
  ASSERT_TRUE(bm.allocate(2, table));
  bm.commit(t.data(), int64_t(t.size()), table);
  bm.take_committed(committed);
  ASSERT_EQ(committed.size(), 1u);
  EXPECT_EQ(committed[0], table[2]);
  EXPECT_EQ(bm.key(table[2]), keys[2]);
  EXPECT_TRUE(std::equal(t.begin() + 2 * kBs, t.begin() + 3 * kBs, bm.block_tokens(table[2])));
  bm.take_committed(committed);
  EXPECT_EQ(committed.size(), 1u);
  // Pinned while it is written: released by its sequence, it is not evictable until unpinned.
  const int32_t written = table[2];
  bm.pin(written);
  bm.release(table);
  EXPECT_EQ(bm.ref_count(written), 1);
  std::vector<int32_t> all;
  EXPECT_FALSE(bm.allocate(8, all)) << "the pinned block is not available";
  bm.unpin(written);
  EXPECT_TRUE(bm.allocate(8, all));
  EXPECT_FALSE(bm.indexed(written)) << "evicted once unpinned";
  // No block for a load: refused, nothing taken.
  EXPECT_FALSE(bm.insert_loaded(keys[2], t.data() + 2 * kBs, [&](int32_t) { ADD_FAILURE(); }));
}

TEST(BlockHash, ModelFingerprintSeparatesKeys) {
  auto t = seq_tokens(kBs);
  EXPECT_NE(block_hash(0, t.data(), kBs, 1), block_hash(0, t.data(), kBs, 2));
  EXPECT_NE(block_hash(0, t.data(), kBs, 1), block_hash(7, t.data(), kBs, 1));
  EXPECT_EQ(block_hash(7, t.data(), kBs, 1), block_hash(7, t.data(), kBs, 1));
}

TEST_F(Fixture, EvictsLeastRecentlyReleasedCachedBlocks) {
  std::vector<std::vector<int32_t>> toks;
  std::vector<std::vector<int32_t>> tables(4);
  for (int i = 0; i < 4; ++i) {
    toks.push_back(seq_tokens(kBs, 1000 * (i + 1)));
    ASSERT_TRUE(bm.allocate(1, tables[size_t(i)]));
    bm.commit(toks.back().data(), kBs, tables[size_t(i)]);
  }
  for (int i = 0; i < 4; ++i) bm.release(tables[size_t(i)]);  // released in order 0,1,2,3
  EXPECT_EQ(bm.stats().cached, 4);
  std::vector<int32_t> big;
  ASSERT_TRUE(bm.allocate(6, big));  // 4 free + evict two: prefixes 0 and 1
  EXPECT_EQ(bm.stats().evictions, 2);
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> t;
    int64_t hit = bm.match_prefix(toks[size_t(i)].data(), kBs + 1, 1, t);
    EXPECT_EQ(hit, i < 2 ? 0 : kBs) << "prefix " << i;
    bm.release(t);
  }
  bm.release(big);
}

TEST_F(Fixture, ForkSharesFullBlocksAndCopiesThePartialOne) {
  std::vector<int32_t> t;
  ASSERT_TRUE(bm.allocate(2, t));
  auto view = bm.view();
  // Fill the parent's partial block with a pattern in both layers.
  for (int64_t l = 0; l < 2; ++l) {
    float* base = static_cast<float*>(view.layer(l).base) + size_t(t[1]) * kBs * 8;
    for (int64_t i = 0; i < 10 * 8; ++i) base[i] = float(l * 1000 + i);
  }
  std::vector<int32_t> child;
  ASSERT_TRUE(bm.fork(t, kBs + 10, child));
  ASSERT_EQ(child.size(), 2u);
  EXPECT_EQ(child[0], t[0]);
  EXPECT_NE(child[1], t[1]);
  EXPECT_EQ(bm.ref_count(t[0]), 2);
  for (int64_t l = 0; l < 2; ++l) {
    const float* base = static_cast<const float*>(view.layer(l).base) + size_t(child[1]) * kBs * 8;
    for (int64_t i = 0; i < 10 * 8; ++i) ASSERT_EQ(base[i], float(l * 1000 + i));
  }
  bm.release(t);
  bm.release(child);
  EXPECT_EQ(bm.stats().used, 0);
}

TEST(BlockManagerNoCache, PrefixCachingOffNeverHits) {
  KvPool pool(kernels::KvCacheSpec{1, 4, 0, DType::kF32}, 4);
  BlockManager bm(pool, 1, /*prefix_caching=*/false);
  auto toks = seq_tokens(2 * kBs);
  std::vector<int32_t> t;
  ASSERT_TRUE(bm.allocate(2, t));
  bm.commit(toks.data(), 2 * kBs, t);
  bm.release(t);
  EXPECT_EQ(bm.stats().free, 4);
  EXPECT_EQ(bm.match_prefix(toks.data(), 2 * kBs, 1, t), 0);
}

}  // namespace
}  // namespace dsinfer::cache

namespace dsinfer::cache {
namespace {

// FlashMLA's FP8 row for DeepSeek-V3's 576-wide latent: 512 e4m3 + 4 fp32 scales + 64 bf16 rope
// = 656 bytes, against 1,152 in bf16; the pool and its byte budget follow the row size.
TEST(KvPool, SizesRowsByTheCacheFormat) {
  kernels::KvCacheSpec bf16{61, 576, 64, DType::kBF16}, fp8{61, 576, 64, DType::kF8E4M3};
  EXPECT_EQ(bf16.row_bytes(), 1152);
  EXPECT_EQ(fp8.row_bytes(), 656);
  EXPECT_EQ(fp8.block_bytes(), 61 * 64 * 656);
  const double gb = 10e9;
  EXPECT_EQ(KvPool::blocks_in_bytes(gb, fp8), int64_t(gb / (61.0 * 64 * 656)));
  EXPECT_NEAR(double(KvPool::blocks_in_bytes(gb, fp8)) / double(KvPool::blocks_in_bytes(gb, bf16)), 1152.0 / 656, 0.01);

  // Layer regions follow each other at num_blocks x block_size x row bytes, and a row's address
  // inside one is its block's slot times the row size.
  kernels::KvCacheSpec small{3, 160 + 16, 16, DType::kF8E4M3};
  EXPECT_EQ(small.row_bytes(), 160 + 4 * 2 + 2 * 16);
  KvPool pool(small, 4);
  kernels::KvCacheView v = pool.view();
  auto* base = static_cast<uint8_t*>(v.base);
  const int64_t layer_bytes = 4 * 64 * small.row_bytes();
  std::vector<int32_t> table{2, 0};
  for (int64_t l = 0; l < 3; ++l) {
    kernels::LatentCacheView lv = v.layer(l);
    EXPECT_EQ(static_cast<uint8_t*>(lv.base), base + l * layer_bytes);
    EXPECT_EQ(lv.row_bytes(), small.row_bytes());
    EXPECT_EQ(static_cast<uint8_t*>(lv.row(table.data(), 65)), base + l * layer_bytes + (0 * 64 + 1) * small.row_bytes());
    EXPECT_EQ(static_cast<uint8_t*>(lv.row(table.data(), 3)), base + l * layer_bytes + (2 * 64 + 3) * small.row_bytes());
  }
}

}  // namespace
}  // namespace dsinfer::cache
