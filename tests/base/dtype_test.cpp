#include "base/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace dsinfer {
namespace {

// Reference decode straight from the E4M3FN definition, by arithmetic rather than bit tricks.
double e4m3_by_definition(int b) {
  int sign = b >> 7, e = (b >> 3) & 15, m = b & 7;
  double v = e == 0 ? (m / 8.0) * std::pow(2.0, -6) : (1 + m / 8.0) * std::pow(2.0, e - 7);
  return sign ? -v : v;
}

TEST(Dtype, E4M3TableMatchesDefinition) {
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(e4m3_to_f32(uint8_t(b)))) << b;
    } else {
      EXPECT_EQ(double(e4m3_to_f32(uint8_t(b))), e4m3_by_definition(b)) << b;
    }
  }
  EXPECT_EQ(e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
}

TEST(Dtype, E4M3RoundTripsEveryFiniteValue) {
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f || b == 0x80) continue;  // NaN; -0 encodes back as -0 = 0x80 too
    EXPECT_EQ(f32_to_e4m3(e4m3_to_f32(uint8_t(b))), b) << b;
  }
}

TEST(Dtype, E4M3RoundsToNearestEvenAndSaturates) {
  // 1.0 = 0x38, next is 1.125 = 0x39; 1.0625 is the midpoint and rounds to even (0x38).
  EXPECT_EQ(f32_to_e4m3(1.0625f), 0x38);
  EXPECT_EQ(f32_to_e4m3(1.07f), 0x39);
  // 1.1875 is the midpoint of 1.125 (odd) and 1.25 (even 0x3a).
  EXPECT_EQ(f32_to_e4m3(1.1875f), 0x3a);
  EXPECT_EQ(f32_to_e4m3(1000.f), 0x7e);
  EXPECT_EQ(f32_to_e4m3(-1000.f), 0xfe);
  EXPECT_EQ(f32_to_e4m3(1e-9f), 0x00);
  EXPECT_EQ(f32_to_e4m3(NAN), 0x7f);
}

// Every float must map to the nearest finite e4m3 value (ties to the even code), found here by
// brute force over the 127 magnitudes.
TEST(Dtype, E4M3MatchesBruteForceNearest) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> mag(-12.0f, 9.5f);
  for (int i = 0; i < 200000; ++i) {
    float f = std::ldexp(1.0f + float(rng() % 4096) / 4096.0f, int(mag(rng))) * ((rng() & 1) ? -1.0f : 1.0f);
    if (i % 3 == 0) f = float(i % 7) * std::ldexp(1.0f, -10) * ((i & 1) ? 1.0f : -1.0f);  // subnormal midpoints
    float a = std::fabs(f);
    int best = 0;
    for (int c = 1; c <= 0x7e; ++c) {
      float dc = std::fabs(e4m3_to_f32(uint8_t(c)) - a), db = std::fabs(e4m3_to_f32(uint8_t(best)) - a);
      if (dc < db || (dc == db && (c & 1) == 0)) best = c;
    }
    if (a >= 448.0f) best = 0x7e;
    uint8_t want = uint8_t(best | (std::signbit(f) ? 0x80 : 0));
    ASSERT_EQ(int(f32_to_e4m3(f)), int(want)) << f;
  }
}

TEST(Dtype, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is the midpoint between 1 and 1 + 2^-7; ties to even keeps 1.
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Dtype, F16Decodes) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
}

}  // namespace
}  // namespace dsinfer
