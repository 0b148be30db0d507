// Every GEMM path this CPU runs (avx2/avx512 on x86-64, neon on aarch64) gives the generic path's
// bits, shape by shape: the decode GEMV (m = 1..4) and the converting GEMM (m > 4, including a
// 96-row task boundary whose tail runs the GEMV), FP8 / BF16 / F32 panels, partial last panels,
// k not a multiple of 128, per-row block scales, a C row stride wider than n, and activations at
// the edges of fp32 (near and past overflow, subnormal) where a path that rescales A or B must
// stay exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/gemm.h"
#include "reference.h"

namespace dsinfer::kernels {
namespace {

struct Weights {
  std::vector<uint8_t> fp8;
  std::vector<uint16_t> bf16;
  std::vector<float> f32, scales;
};

PackedMatrix make_packed(DType dtype, int64_t n, int64_t k, uint32_t seed, Weights& w) {
  auto v = ref::randn(size_t(n * k), seed);
  switch (dtype) {
    case DType::kF8E4M3: {
      w.fp8.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) {
        uint8_t b = f32_to_e4m3(v[i] * 64.0f);
        if (i % 37 == 0) b = uint8_t(i % 256);  // every code, subnormals and +-448 included
        if ((b & 0x7f) == 0x7f) b ^= 0x01;      // not the NaN codes
        w.fp8[i] = b;
      }
      const int64_t sr = (n + 127) / 128, sc = (k + 127) / 128;
      w.scales.resize(size_t(sr * sc));
      for (size_t i = 0; i < w.scales.size(); ++i) w.scales[i] = 0.003f * float(1 + i % 5);
      return pack_matrix(WeightView{DType::kF8E4M3, w.fp8.data(), n, k, w.scales.data(), 128, 128, sc, 0});
    }
    case DType::kBF16:
      w.bf16.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) w.bf16[i] = f32_to_bf16(v[i]);
      return pack_matrix(WeightView{DType::kBF16, w.bf16.data(), n, k});
    default:
      w.f32 = v;
      return pack_matrix(WeightView{DType::kF32, w.f32.data(), n, k});
  }
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b)); }

// Runs gemm_f32_nt on every path this CPU supports over the given shapes and compares each with
// the generic path bit for bit; edge(a, m, lda, k) may plant special activation values.
template <typename Edge>
void expect_paths_match_generic(const std::vector<std::pair<int64_t, int64_t>>& nk, const std::vector<int64_t>& ms,
                                Edge edge) {
  std::vector<Isa> others;
  for (Isa isa : supported_isas())
    if (isa != Isa::kGeneric) others.push_back(isa);
  if (others.empty()) GTEST_SKIP() << "only the generic path runs here";
  for (DType dtype : {DType::kF8E4M3, DType::kBF16, DType::kF32})
    for (auto [n, k] : nk) {
      Weights w;
      const PackedMatrix p = make_packed(dtype, n, k, uint32_t(n * 31 + k), w);
      ASSERT_EQ(p.dtype, dtype);
      const int64_t kb = k_blocks(k);
      for (int64_t m : ms) {
        const int64_t lda = k + 3, ldd = n + 5;
        auto a = ref::randn(size_t(m * lda), uint32_t(m + k));
        edge(a, m, lda, k);
        auto sa = ref::randn(size_t(m * kb), uint32_t(m), 0.5f);
        for (auto& s : sa) s = std::fabs(s) + 0.25f;
        for (bool scaled : {false, true}) {
          const float* sap = scaled ? sa.data() : nullptr;
          std::vector<float> want(size_t(m * ldd), -1.0f);
          set_isa_override(Isa::kGeneric);
          gemm_f32_nt(a.data(), lda, sap, kb, m, p, want.data(), ldd);
          for (Isa isa : others) {
            set_isa_override(isa);
            std::vector<float> got(size_t(m * ldd), -1.0f);
            gemm_f32_nt(a.data(), lda, sap, kb, m, p, got.data(), ldd);
            for (size_t i = 0; i < got.size(); ++i)
              ASSERT_TRUE(same_bits(got[i], want[i]))
                  << isa_name(isa) << " " << dtype_name(dtype) << " m=" << m << " n=" << n << " k=" << k
                  << (scaled ? " scaled" : "") << " row " << i / size_t(ldd) << " col " << i % size_t(ldd) << ": "
                  << got[i] << " vs " << want[i];
          }
          reset_isa_override();
        }
      }
    }
}

TEST(GemmPaths, EveryPathGivesTheGenericBits) {
  expect_paths_match_generic(
      {{63, 129}, {130, 300}, {64, 128}}, {1, 2, 3, 4, 5, 7, 13, 100},
      [](std::vector<float>& a, int64_t m, int64_t lda, int64_t k) {
        a[0] = 0x1.fffffep119f;  // the largest |A| whose 256 x A is finite (an FP8 path may fold 2^8 into A)
        if (m > 2) a[size_t(2 * lda + 200 % k)] = 1e-40f;  // subnormal
      });
}

// Activations past 2^120, where 256 x A overflows: a path that moves the FP8 decode's 2^8 onto
// A must notice and keep the generic bits (gemm_neon.cpp and gemm_avx2.cpp then scale the
// decoded weights instead).
TEST(GemmPaths, ActivationsPastTwoTo120GiveTheGenericBits) {
  expect_paths_match_generic(
      {{63, 129}, {130, 300}}, {1, 2, 3, 4, 7},
      [](std::vector<float>& a, int64_t m, int64_t lda, int64_t k) {
        a[1] = -0x1p121f;
        a[size_t((m - 1) * lda + k - 1)] = 0x1p125f;
      });
}

// The ends of the range in which the AVX2 FP8 GEMV decodes weights straight into fp32 bits
// (w * 2^-120, with 2^64 on A): every nonzero |a| in [2^-30, 2^64). Row 0 sits on both ends
// (and holds zeros), so it runs that decode; a row with a value just outside (2^-31) runs the
// fallback; both must give the generic bits.
TEST(GemmPaths, Fp8GemvDecodeRangeEdgesGiveTheGenericBits) {
  expect_paths_match_generic(
      {{63, 129}, {130, 300}}, {1, 2, 3, 4},
      [](std::vector<float>& a, int64_t m, int64_t lda, int64_t k) {
        a[0] = 0x1p-30f;
        a[1] = -0x1.fffffep63f;
        a[2] = 0.0f;
        a[3] = -0x1p-30f;
        for (int64_t i = 4; i < k; i += 7) a[size_t(i)] *= 0x1p-28f;  // small, still >= 2^-30 mostly
        for (int64_t i = 4; i < k; i += 7)
          if (std::fabs(a[size_t(i)]) < 0x1p-30f) a[size_t(i)] = 0x1p-30f;
        if (m > 1) a[size_t(lda + 5)] = 0x1p-31f;  // outside: that row group falls back
      });
}

// Huge activation block scales (an FP8-quantised activation of magnitude ~2^100): the AVX2 FP8
// GEMV's decode multiplies the block scale by 2^56, which must not overflow where the generic
// path's product stays finite.
TEST(GemmPaths, HugeActivationScalesGiveTheGenericBits) {
  std::vector<Isa> others;
  for (Isa isa : supported_isas())
    if (isa != Isa::kGeneric) others.push_back(isa);
  if (others.empty()) GTEST_SKIP() << "only the generic path runs here";
  const int64_t n = 64, k = 256, kb = k_blocks(k);
  Weights w;
  const PackedMatrix p = make_packed(DType::kF8E4M3, n, k, 7, w);
  for (int64_t m : {1L, 2L, 3L, 4L}) {
    auto a = ref::randn(size_t(m * k), uint32_t(m));
    std::vector<float> sa(size_t(m * kb), 1.0f);
    sa[0] = 0x1p100f;       // row 0, block 0
    sa[size_t(kb - 1)] = 0x1p-100f;
    std::vector<float> want(size_t(m * n));
    set_isa_override(Isa::kGeneric);
    gemm_f32_nt(a.data(), k, sa.data(), kb, m, p, want.data(), n);
    for (Isa isa : others) {
      set_isa_override(isa);
      std::vector<float> got(size_t(m * n));
      gemm_f32_nt(a.data(), k, sa.data(), kb, m, p, got.data(), n);
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_TRUE(same_bits(got[i], want[i])) << isa_name(isa) << " m=" << m << " at " << i << ": " << got[i] << " vs " << want[i];
    }
    reset_isa_override();
  }
}

}  // namespace
}  // namespace dsinfer::kernels
