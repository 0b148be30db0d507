// BlockIndex against std::unordered_map under random inserts and erases, with keys chosen to
// collide in the low bits so probe runs wrap and backward-shift deletion is exercised.
#include "cache/block_index.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace dsinfer::cache {
namespace {

TEST(BlockIndex, AgreesWithAHashMapUnderChurn) {
  const int64_t kBlocks = 64;
  BlockIndex index(kBlocks);
  std::unordered_map<uint64_t, int32_t> ref;
  std::mt19937_64 rng(7);
  std::vector<int32_t> free_ids;
  for (int32_t i = 0; i < kBlocks; ++i) free_ids.push_back(i);
  for (int step = 0; step < 20000; ++step) {
    // Few distinct low bits: many keys share a home slot.
    const uint64_t key = ((rng() % 40) << 20 | (rng() % 8)) + 1;
    if (!free_ids.empty() && !ref.count(key) && rng() % 2) {
      const int32_t id = free_ids.back();
      free_ids.pop_back();
      index.insert(key, id);
      ref[key] = id;
    } else if (auto it = ref.find(key); it != ref.end()) {
      index.erase(key, it->second + 1);  // wrong block: nothing happens
      ASSERT_EQ(index.find(key), it->second);
      index.erase(key, it->second);
      free_ids.push_back(it->second);
      ref.erase(it);
    }
    if (step % 97 == 0) {
      for (uint64_t k = 1; k < (40ull << 20) + 9; k += (1ull << 20) - 3) ASSERT_EQ(index.find(k), ref.count(k) ? ref[k] : -1);
    }
    for (const auto& [k, v] : ref) ASSERT_EQ(index.find(k), v) << "step " << step;
  }
}

TEST(BlockIndex, MissesWhatWasNeverInserted) {
  BlockIndex index(4);
  EXPECT_EQ(index.find(42), -1);
  index.insert(42, 3);
  EXPECT_TRUE(index.contains(42));
  EXPECT_FALSE(index.contains(43));
  index.erase(42, 3);
  EXPECT_FALSE(index.contains(42));
}

}  // namespace
}  // namespace dsinfer::cache
