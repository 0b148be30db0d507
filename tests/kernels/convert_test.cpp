#include "kernels/convert.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "base/dtype.h"
#include "kernels/cpu_features.h"
#include "kernels/gemm.h"
#include "isa_test.h"
#include "reference.h"

namespace dsinfer::kernels {
namespace {

class ConvertIsa : public IsaTest {};

// Same bits, or both NaN (a NaN's payload is not part of any definition here).
void expect_same(float got, float want, const char* what, size_t i) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << what << " element " << i;
    return;
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
      << what << " element " << i << ": got " << got << " want " << want;
}

// Values where rounding goes wrong first: every e4m3 value, the midpoints between neighbours
// (ties to even), one ulp either side of each, the subnormal/normal boundary, 448 and beyond,
// infinities, NaN, signed zeros.
std::vector<float> e4m3_edge_values() {
  std::vector<float> pos;
  for (int c = 0; c < 0x7f; ++c) pos.push_back(e4m3_to_f32(uint8_t(c)));
  std::vector<float> v;
  for (size_t i = 0; i < pos.size(); ++i) {
    v.push_back(pos[i]);
    if (i + 1 < pos.size()) {
      const float mid = 0.5f * (pos[i] + pos[i + 1]);
      v.push_back(mid);
      v.push_back(std::nextafter(mid, 0.0f));
      v.push_back(std::nextafter(mid, 1e9f));
    }
  }
  for (float x : {0x1.0p-6f, std::nextafter(0x1.0p-6f, 0.0f), 0x1.0p-10f, 0x1.8p-10f, 450.0f, 464.0f, 500.0f, 1e30f,
                  std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(), 0.0f})
    v.push_back(x);
  const size_t n = v.size();
  for (size_t i = 0; i < n; ++i) v.push_back(-v[i]);
  return v;
}

TEST_P(ConvertIsa, EveryE4m3CodeWidensExactly) {
  // Two rows of odd length with a row stride, so tails and strides are exercised.
  const int64_t k = 259, lda = 263, ldo = 270;
  std::vector<uint8_t> a(size_t(2 * lda), 0);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < k; ++j) a[size_t(i * lda + j)] = uint8_t((j * 7 + i * 131) % 256);
  std::vector<float> out(size_t(2 * ldo), -1.0f);
  e4m3_rows_to_f32(a.data(), lda, 2, k, out.data(), ldo);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < k; ++j)
      expect_same(out[size_t(i * ldo + j)], e4m3_to_f32(a[size_t(i * lda + j)]), "e4m3", size_t(i * ldo + j));
  EXPECT_EQ(out[size_t(k)], -1.0f) << "wrote past the row";
}

TEST_P(ConvertIsa, ScaledE4m3BlockMatchesScalarDefinition) {
  // One FP8 cache block (as latent_cache_gather reads it): every code times a non-power-of-two
  // scale, rounded once; 300 values so the last vector is partial.
  std::vector<uint8_t> a(300);
  for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 37 % 256);
  std::vector<float> out(a.size() + 1, -1.0f);
  const float scale = 0.0123f;
  e4m3_to_f32_scaled(a.data(), int64_t(a.size()), scale, out.data());
  for (size_t i = 0; i < a.size(); ++i) expect_same(out[i], e4m3_to_f32(a[i]) * scale, "scaled e4m3", i);
  EXPECT_EQ(out[a.size()], -1.0f) << "wrote past the block";
}

TEST_P(ConvertIsa, Bf16RoundingMatchesScalarDefinition) {
  std::vector<float> x = e4m3_edge_values();
  for (uint32_t u : {0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x00000001u, 0x807fffffu, 0x7f7fffffu, 0x7f7f8000u,
                     0x7fa00000u, 0xffc00001u, 0x7f800000u})
    x.push_back(std::bit_cast<float>(u));
  const int64_t n = int64_t(x.size());
  std::vector<uint16_t> b(x.size());
  f32_rows_to_bf16(x.data(), n, 1, n, b.data(), n);
  std::vector<float> r(x.size());
  round_rows_to_bf16(x.data(), n, 1, n, r.data(), n);
  std::vector<float> back(x.size());
  bf16_rows_to_f32(b.data(), n, 1, n, back.data(), n);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(b[i], f32_to_bf16(x[i])) << "element " << i << " = " << x[i];
    expect_same(r[i], round_to_bf16(x[i]), "round_to_bf16", i);
    expect_same(back[i], bf16_to_f32(b[i]), "bf16_to_f32", i);
  }
}

// The scalar definition the quantiser must reproduce.
void reference_quantize(const float* x, int64_t k, bool ue8m0, std::vector<float>& scales, std::vector<uint8_t>& codes) {
  scales.assign(size_t(k_blocks(k)), 0);
  codes.assign(size_t(k), 0);
  for (int64_t b = 0; b < k_blocks(k); ++b) {
    float amax = 0;
    for (int64_t c = b * 128; c < std::min(k, b * 128 + 128); ++c) amax = std::max(amax, std::fabs(x[c]));
    float s = std::max(amax, 1e-4f) / 448.0f;
    if (ue8m0) s = std::exp2(std::ceil(std::log2(s)));
    scales[size_t(b)] = s;
    for (int64_t c = b * 128; c < std::min(k, b * 128 + 128); ++c) codes[size_t(c)] = f32_to_e4m3(x[c] * (1.0f / s));
  }
}

void check_quantiser(const std::vector<float>& x, int64_t m, int64_t k, bool ue8m0) {
  std::vector<float> scales(size_t(m * k_blocks(k))), values(size_t(m * k)), scales2(scales.size());
  std::vector<uint8_t> codes(size_t(m * k));
  quantize_rows_1x128(x.data(), m, k, k, ue8m0, scales.data(), codes.data(), values.data());
  // prepare_activations (the GEMM's entry) gives the same values and scales.
  std::vector<float> prepared(values.size());
  ASSERT_TRUE(prepare_activations(x.data(), m, k, k, ue8m0 ? ActQuant::kFp8Ue8m0 : ActQuant::kFp8, prepared.data(),
                                  scales2.data()));
  for (int64_t i = 0; i < m; ++i) {
    std::vector<float> want_scales;
    std::vector<uint8_t> want_codes;
    reference_quantize(x.data() + i * k, k, ue8m0, want_scales, want_codes);
    for (int64_t b = 0; b < k_blocks(k); ++b) {
      EXPECT_EQ(scales[size_t(i * k_blocks(k) + b)], want_scales[size_t(b)]) << "row " << i << " block " << b;
      EXPECT_EQ(scales2[size_t(i * k_blocks(k) + b)], want_scales[size_t(b)]) << "row " << i << " block " << b;
    }
    for (int64_t c = 0; c < k; ++c) {
      const size_t at = size_t(i * k + c);
      EXPECT_EQ(codes[at], want_codes[size_t(c)]) << "row " << i << " col " << c << " x = " << x[at];
      expect_same(values[at], e4m3_to_f32(want_codes[size_t(c)]), "value", at);
      expect_same(prepared[at], e4m3_to_f32(want_codes[size_t(c)]), "prepared", at);
    }
  }
}

TEST_P(ConvertIsa, QuantiserMatchesScalarDefinitionOnRoundingEdges) {
  // Every finite edge value of magnitude <= 448 goes in a 128-block that also holds 448, so the
  // block's scale is exactly 1 and the value reaches the rounding unchanged (checked below).
  // The rest (beyond 448, infinities, NaN) follow in trailing blocks of their own, whose scales
  // are whatever the definition makes of them; the last block is partial.
  std::vector<float> in_range, beyond;
  for (float v : e4m3_edge_values()) (std::fabs(v) <= 448.0f ? in_range : beyond).push_back(v);
  std::vector<float> x;
  for (float v : in_range) {
    if (x.size() % 128 == 0) x.push_back(448.0f);
    x.push_back(v);
  }
  while (x.size() % 128) x.push_back(0.5f);
  const int64_t unit_blocks = int64_t(x.size()) / 128;
  for (float v : beyond) {
    x.push_back(v);
    x.push_back(1.0f);  // a finite neighbour in each trailing block
  }
  const int64_t k = int64_t(x.size());
  ASSERT_NE(k % 128, 0);
  check_quantiser(x, 1, k, false);
  std::vector<float> scales(size_t(k_blocks(k)));
  quantize_rows_1x128(x.data(), 1, k, k, false, scales.data(), nullptr, nullptr);
  for (int64_t b = 0; b < unit_blocks; ++b) ASSERT_EQ(scales[size_t(b)], 1.0f) << "block " << b;
}

TEST_P(ConvertIsa, QuantiserMatchesScalarDefinitionOnRandomRows) {
  // Many rows (the pool splits them), magnitudes from 1e-7 to 1e4, an all-zero block (amax
  // clamped at 1e-4) and UE8M0 scales.
  const int64_t m = 70, k = 1000;
  std::vector<float> x = ref::randn(size_t(m * k), 11);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < k; ++c) x[size_t(i * k + c)] *= std::pow(10.0f, float(i % 12) - 7.0f);
  for (int64_t c = 128; c < 256; ++c) x[size_t(3 * k + c)] = 0.0f;
  for (bool ue8m0 : {false, true}) check_quantiser(x, m, k, ue8m0);
}

DSINFER_ISA_SUITE(ConvertIsa);

}  // namespace
}  // namespace dsinfer::kernels
