// checksum_bytes catches what a checksum of block files and transfers must: any one flipped bit,
// stripes or segments in another order, another length or seed.
#include "base/hash.h"

#include <gtest/gtest.h>

#include <numeric>
#include <set>
#include <vector>

namespace dsinfer {
namespace {

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(mix64(i) >> 13);
  return v;
}

TEST(ChecksumBytes, EveryFlippedBitChangesIt) {
  // 3 KB + 37 bytes: whole segments, a partial one, and a tail shorter than a stripe.
  auto v = pattern(3 * 1024 + 37);
  const uint64_t base = checksum_bytes(7, v.data(), v.size());
  std::set<uint64_t> seen{base};
  for (size_t byte = 0; byte < v.size(); ++byte)
    for (int bit = 0; bit < 8; ++bit) {
      v[byte] ^= uint8_t(1 << bit);
      const uint64_t c = checksum_bytes(7, v.data(), v.size());
      ASSERT_NE(c, base) << "byte " << byte << " bit " << bit;
      seen.insert(c);
      v[byte] ^= uint8_t(1 << bit);
    }
  EXPECT_EQ(seen.size(), 1 + v.size() * 8) << "every flip gives its own checksum";
  // All-zero data (a zeroed page) is covered too.
  std::vector<uint8_t> z(2048, 0);
  const uint64_t zero = checksum_bytes(7, z.data(), z.size());
  z[1000] = 1;
  EXPECT_NE(checksum_bytes(7, z.data(), z.size()), zero);
}

TEST(ChecksumBytes, OrderLengthAndSeedMatter) {
  auto v = pattern(4096);
  const uint64_t base = checksum_bytes(1, v.data(), v.size());
  auto swapped = v;  // two 64-byte stripes of one segment exchanged
  std::swap_ranges(swapped.begin() + 64, swapped.begin() + 128, swapped.begin() + 256);
  EXPECT_NE(checksum_bytes(1, swapped.data(), swapped.size()), base);
  auto segments = v;  // two 1 KB segments exchanged
  std::swap_ranges(segments.begin(), segments.begin() + 1024, segments.begin() + 2048);
  EXPECT_NE(checksum_bytes(1, segments.data(), segments.size()), base);
  EXPECT_NE(checksum_bytes(1, v.data(), v.size() - 1), base);
  EXPECT_NE(checksum_bytes(2, v.data(), v.size()), base);
  EXPECT_EQ(checksum_bytes(1, v.data(), v.size()), base) << "deterministic";
}

}  // namespace
}  // namespace dsinfer
