#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu_features.h"
#include "isa_test.h"
#include "reference.h"

namespace dsinfer::kernels {
namespace {

// An FP8 [n, k] weight with 128x128 block scales, with e4m3 edge values (+-448, subnormals) and
// one all-zero 128x128 block.
struct Fp8Weight {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightView view;
  int64_t n, k;
  double at(int64_t r, int64_t c) const {
    return double(e4m3_to_f32(bytes[size_t(r * k + c)])) * scales[size_t((r / 128) * ((k + 127) / 128) + c / 128)];
  }
};

Fp8Weight make_fp8(int64_t n, int64_t k, uint32_t seed) {
  Fp8Weight q;
  q.n = n;
  q.k = k;
  auto w = ref::randn(size_t(n * k), seed);
  const int64_t sr = (n + 127) / 128, sc = (k + 127) / 128;
  q.scales.resize(size_t(sr * sc));
  for (size_t i = 0; i < q.scales.size(); ++i) q.scales[i] = 0.002f * float(1 + (i * 5 + seed) % 7);
  q.bytes.resize(size_t(n * k));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) {
      uint8_t b = f32_to_e4m3(w[size_t(r * k + c)] * 100.0f);
      if ((r + c) % 97 == 0) b = 0x7e;  // +448
      if ((r + c) % 89 == 0) b = 0xfe;  // -448
      if ((r + c) % 83 == 0) b = 0x03;  // subnormal
      if ((r + c) % 79 == 0) b = 0x81;  // negative subnormal
      if (r >= 128 && r < 256 && c < 128) b = 0;  // an all-zero block (when it exists)
      q.bytes[size_t(r * k + c)] = b;
    }
  q.view = {DType::kF8E4M3, q.bytes.data(), n, k, q.scales.data(), 128, 128, sc, 0};
  return q;
}

// C[i, j] in double from the definition, with per-block activation scales when given.
std::vector<double> reference_gemm(const std::vector<float>& a, int64_t m, int64_t k, const float* sa,
                                   const std::function<double(int64_t, int64_t)>& b, int64_t n) {
  std::vector<double> c(size_t(m * n), 0.0);
  const int64_t kb = (k + 127) / 128;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t c2 = 0; c2 < k; ++c2) s += double(a[size_t(i * k + c2)]) * (sa ? sa[i * kb + c2 / 128] : 1.0) * b(j, c2);
      c[size_t(i * n + j)] = s;
    }
  return c;
}

// |error| bounded relative to the sum of |terms| (the scale of fp32 rounding in a long dot).
void expect_close(const float* got, const std::vector<double>& want, const std::vector<double>& mag, double tol,
                  const std::string& what) {
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (mag[i] + 1e-30)) << what << " at " << i;
}

std::vector<double> magnitudes(const std::vector<float>& a, int64_t m, int64_t k, const float* sa,
                               const std::function<double(int64_t, int64_t)>& b, int64_t n) {
  std::vector<float> abs_a(a.size());
  for (size_t i = 0; i < a.size(); ++i) abs_a[i] = std::fabs(a[i]);
  return reference_gemm(abs_a, m, k, sa, [&](int64_t j, int64_t c) { return std::fabs(b(j, c)); }, n);
}

TEST(Gemm, PackingKeepsEveryValue) {
  Fp8Weight w = make_fp8(300, 257, 1);
  PackedMatrix p = pack_matrix(w.view);
  ASSERT_EQ(p.dtype, DType::kF8E4M3);
  for (int64_t r = 0; r < 300; ++r)
    for (int64_t c = 0; c < 257; ++c) ASSERT_EQ(double(packed_value(p, r, c)), double(float(w.at(r, c)))) << r << "," << c;
  PackedMatrix t = pack_matrix_transposed(w.view);
  ASSERT_EQ(t.dtype, DType::kF8E4M3);
  for (int64_t r = 0; r < 300; ++r)
    for (int64_t c = 0; c < 257; ++c) ASSERT_EQ(double(packed_value(t, c, r)), double(float(w.at(r, c))));
  // A slice at an offset that is not panel aligned falls back to exact fp32.
  PackedMatrix s = pack_matrix(w.view.slice_rows(100, 50));
  EXPECT_EQ(s.dtype, DType::kF32);
  for (int64_t r = 0; r < 50; ++r)
    for (int64_t c = 0; c < 257; ++c) ASSERT_EQ(double(packed_value(s, r, c)), double(float(w.at(100 + r, c))));
  // Stacked (gate | up).
  PackedMatrix st = pack_matrix_stacked({w.view.slice_rows(0, 128), w.view.slice_rows(128, 172)});
  EXPECT_EQ(st.dtype, DType::kF8E4M3);
  for (int64_t r = 0; r < 300; r += 7)
    for (int64_t c = 0; c < 257; ++c) ASSERT_EQ(double(packed_value(st, r, c)), double(float(w.at(r, c))));
}

class GemmIsa : public IsaTest {};

TEST_P(GemmIsa, Fp32ActivationsMatchScalarReferenceForOddShapes) {
  for (auto [m, n, k] : {std::tuple{1L, 1L, 1L}, {1L, 65L, 129L}, {2L, 63L, 127L}, {3L, 130L, 256L}, {4L, 64L, 576L},
                         {5L, 129L, 200L}, {13L, 300L, 131L}, {97L, 70L, 300L}, {300L, 66L, 129L}}) {
    Fp8Weight w = make_fp8(n, k, uint32_t(m * 7 + n));
    PackedMatrix p = pack_matrix(w.view);
    auto x = ref::randn(size_t(m * k), uint32_t(k));
    std::vector<float> y(size_t(m * n), std::nanf(""));
    linear(x.data(), m, k, p, y.data(), n, ActQuant::kF32);
    auto bf = [&](int64_t j, int64_t c) { return w.at(j, c); };
    expect_close(y.data(), reference_gemm(x, m, k, nullptr, bf, n), magnitudes(x, m, k, nullptr, bf, n), 2e-6,
                 "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
  }
}

TEST_P(GemmIsa, Fp8NtMatchesBlockScaledDefinition) {
  for (auto [m, n, k] : {std::tuple{1L, 576L, 1024L}, {3L, 129L, 200L}, {7L, 300L, 257L}, {130L, 128L, 384L}}) {
    Fp8Weight w = make_fp8(n, k, uint32_t(n + k));
    PackedMatrix p = pack_matrix(w.view);
    auto x = ref::randn(size_t(m * k), uint32_t(m));
    for (int64_t c = 0; c < std::min<int64_t>(k, 128); ++c) x[size_t(c)] = 0;  // an all-zero activation block
    for (bool ue8m0 : {false, true}) {
      const int64_t kb = k_blocks(k);
      std::vector<uint8_t> qa(size_t(m * k));
      std::vector<float> sa(size_t(m * kb));
      quantize_fp8_1x128(x.data(), m, k, k, ue8m0, qa.data(), sa.data());
      EXPECT_FLOAT_EQ(sa[0], ue8m0 ? std::exp2(std::ceil(std::log2(1e-4f / 448))) : 1e-4f / 448);  // amax clamp
      std::vector<float> qv(qa.size());
      for (size_t i = 0; i < qa.size(); ++i) qv[i] = e4m3_to_f32(qa[i]);
      std::vector<float> y(size_t(m * n));
      gemm_fp8_nt(qa.data(), k, sa.data(), m, p, y.data(), n);
      auto bf = [&](int64_t j, int64_t c) { return w.at(j, c); };
      expect_close(y.data(), reference_gemm(qv, m, k, sa.data(), bf, n), magnitudes(qv, m, k, sa.data(), bf, n), 2e-6,
                   "fp8 m=" + std::to_string(m));
      // The quantiser: within one e4m3 step of x, and UE8M0 scales are powers of two.
      for (int64_t i = 0; i < m; ++i)
        for (int64_t c = 0; c < k; ++c) {
          float s = sa[size_t(i * kb + c / 128)];
          ASSERT_NEAR(qv[size_t(i * k + c)] * s, x[size_t(i * k + c)], std::fabs(x[size_t(i * k + c)]) / 16 + s / 512 * 1.01);
          if (ue8m0) {
            ASSERT_EQ(std::exp2(std::round(std::log2(s))), s);
          }
        }
      // bf16 output is the rounded fp32 output.
      std::vector<uint16_t> yb(size_t(m * n));
      gemm_fp8_nt(qa.data(), k, sa.data(), m, p, yb.data(), n);
      for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(yb[i], f32_to_bf16(y[i]));
    }
  }
}

TEST_P(GemmIsa, Bf16NtMatchesReference) {
  const int64_t m = 37, n = 131, k = 333;
  auto wf = ref::randn(size_t(n * k), 3), xf = ref::randn(size_t(m * k), 4);
  std::vector<uint16_t> wb(wf.size()), xb(xf.size());
  for (size_t i = 0; i < wf.size(); ++i) wb[i] = f32_to_bf16(wf[i]);
  std::vector<float> xr(xf.size());
  for (size_t i = 0; i < xf.size(); ++i) xr[i] = bf16_to_f32(xb[i] = f32_to_bf16(xf[i]));
  PackedMatrix p = pack_matrix(WeightView{DType::kBF16, wb.data(), n, k});
  ASSERT_EQ(p.dtype, DType::kBF16);
  std::vector<float> y(size_t(m * n));
  gemm_bf16_nt(xb.data(), k, m, p, y.data(), n);
  auto bf = [&](int64_t j, int64_t c) { return double(bf16_to_f32(wb[size_t(j * k + c)])); };
  expect_close(y.data(), reference_gemm(xr, m, k, nullptr, bf, n), magnitudes(xr, m, k, nullptr, bf, n), 2e-6, "bf16");
}

DSINFER_ISA_SUITE(GemmIsa);

// Every finite e4m3 code decodes exactly through both AVX-512 paths (the decode GEMV reading
// packed bytes, m <= 4, and the buffered GEMM, m > 4) and the AVX2 fallback: one-hot activation
// rows pick single weights out, so C[i, j] must equal the code's value times the block scale.
TEST_P(GemmIsa, EveryE4m3CodeDecodesExactly) {
  const int64_t n = 320, k = 256;  // 5 panels, 2 scale blocks in each direction
  std::vector<uint8_t> bytes(size_t(n * k));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) {
      uint8_t b = uint8_t((r * 131 + c * 7) % 256);
      if ((b & 0x7f) == 0x7f) b ^= 0x01;  // NaN codes are not weights
      bytes[size_t(r * k + c)] = b;
    }
  std::vector<float> scales = {1.0f, 0.5f, 2.0f, 0.25f, 4.0f, 8.0f};  // [3 row blocks, 2 col blocks]
  WeightView view{DType::kF8E4M3, bytes.data(), n, k, scales.data(), 128, 128, 2, 0};
  PackedMatrix p = pack_matrix(view);
  ASSERT_EQ(p.dtype, DType::kF8E4M3);
  std::vector<int> seen(256, 0);
  for (uint8_t b : bytes) seen[b] = 1;
  ASSERT_EQ(std::count(seen.begin(), seen.end(), 1), 254);
  for (int64_t m : {1L, 4L, 64L}) {
    for (int64_t c0 = 0; c0 < k; c0 += m) {
      std::vector<float> x(size_t(m * k), 0.0f);
      for (int64_t i = 0; i < m; ++i) x[size_t(i * k + c0 + i)] = 1.0f;
      std::vector<float> y(size_t(m * n));
      linear(x.data(), m, k, p, y.data(), n, ActQuant::kF32);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const int64_t c = c0 + i;
          const float want = e4m3_to_f32(bytes[size_t(j * k + c)]) * scales[size_t((j / 128) * 2 + c / 128)];
          ASSERT_EQ(y[size_t(i * n + j)], want) << "m=" << m << " row " << j << " col " << c << " code "
                                                << int(bytes[size_t(j * k + c)]);
        }
    }
  }
}

// A row's result is bit-identical whatever m is and on both ISAs: the small-m decode path, the
// chunked path and the AVX2 fallback all run the same fp32 operations.
TEST(Gemm, RowsAreBatchAndIsaInvariant) {
  for (auto [n, k, dtype] : {std::tuple{200L, 1100L, DType::kF8E4M3}, {131L, 300L, DType::kBF16}}) {
    Fp8Weight w = make_fp8(n, k, 5);
    std::vector<uint16_t> wb(size_t(n * k));
    for (size_t i = 0; i < wb.size(); ++i) wb[i] = f32_to_bf16(float(w.at(int64_t(i) / k, int64_t(i) % k)));
    PackedMatrix p = dtype == DType::kF8E4M3 ? pack_matrix(w.view) : pack_matrix(WeightView{DType::kBF16, wb.data(), n, k});
    const int64_t m = 40;
    auto x = ref::randn(size_t(m * k), 6);
    for (ActQuant act : {ActQuant::kF32, ActQuant::kBf16, ActQuant::kFp8}) {
      std::vector<float> all(size_t(m * n));
      linear(x.data(), m, k, p, all.data(), n, act);
      for (int64_t len : {1L, 2L, 3L, 4L, 5L}) {
        for (int64_t i = 0; i + len <= m; i += 11) {
          std::vector<float> part(size_t(len * n));
          linear(x.data() + i * k, len, k, p, part.data(), n, act);
          for (int64_t r = 0; r < len * n; ++r) ASSERT_EQ(part[size_t(r)], all[size_t(i * n + r)]) << "row " << i;
        }
      }
      // Every other path this CPU runs gives the same bits (gemm_internal.h's one order).
      for (Isa isa : supported_isas()) {
        set_isa_override(isa);
        std::vector<float> other(size_t(m * n));
        linear(x.data(), m, k, p, other.data(), n, act);
        reset_isa_override();
        EXPECT_EQ(other, all) << isa_name(isa);
      }
    }
  }
}

TEST(Gemm, GroupedContiguousSkipsPaddingAndMatchesPerGroup) {
  const int64_t G = 3, n = 130, k = 260;
  std::vector<Fp8Weight> ws;
  std::vector<PackedMatrix> packed;
  for (int g = 0; g < G; ++g) ws.push_back(make_fp8(n, k, uint32_t(10 + g)));
  for (auto& w : ws) packed.push_back(pack_matrix(w.view));
  std::vector<const PackedMatrix*> bs;
  for (auto& p : packed) bs.push_back(&p);
  // Group sizes 5, 0, 130 each padded to 128-row alignment with -1 rows.
  std::vector<int32_t> idx;
  for (auto [g, rows] : {std::pair{0, 5}, {2, 130}}) {
    for (int r = 0; r < rows; ++r) idx.push_back(g);
    while (idx.size() % 128) idx.push_back(-1);
  }
  const int64_t m = int64_t(idx.size());
  auto x = ref::randn(size_t(m * k), 7);
  const int64_t kb = k_blocks(k);
  std::vector<uint8_t> qa(size_t(m * k));
  std::vector<float> sa(size_t(m * kb));
  quantize_fp8_1x128(x.data(), m, k, k, false, qa.data(), sa.data());
  std::vector<float> d(size_t(m * n), -7.0f);
  gemm_grouped_contiguous_fp8(qa.data(), sa.data(), m, k, idx.data(), bs.data(), d.data(), n);
  for (int64_t i = 0; i < m; ++i) {
    if (idx[size_t(i)] < 0) {
      for (int64_t j = 0; j < n; ++j) ASSERT_EQ(d[size_t(i * n + j)], -7.0f) << "padding row " << i << " was written";
      continue;
    }
    std::vector<float> one(static_cast<size_t>(n));
    gemm_fp8_nt(qa.data() + i * k, k, sa.data() + i * kb, 1, *bs[size_t(idx[size_t(i)])], one.data(), n);
    for (int64_t j = 0; j < n; ++j) ASSERT_EQ(d[size_t(i * n + j)], one[size_t(j)]) << "row " << i;
  }
}

TEST(Gemm, GroupedMaskedComputesOnlyCountedRows) {
  const int64_t G = 4, m_max = 9, n = 70, k = 150;
  std::vector<Fp8Weight> ws;
  std::vector<PackedMatrix> packed;
  for (int g = 0; g < G; ++g) ws.push_back(make_fp8(n, k, uint32_t(20 + g)));
  for (auto& w : ws) packed.push_back(pack_matrix(w.view));
  std::vector<const PackedMatrix*> bs;
  for (auto& p : packed) bs.push_back(&p);
  int32_t counts[G] = {0, 1, 9, 4};
  auto x = ref::randn(size_t(G * m_max * k), 8);
  std::vector<float> d(size_t(G * m_max * n), -3.0f);
  gemm_grouped_masked(x.data(), nullptr, G, m_max, k, counts, bs.data(), d.data());
  for (int64_t g = 0; g < G; ++g)
    for (int64_t i = 0; i < m_max; ++i) {
      const float* row = d.data() + (g * m_max + i) * n;
      if (i >= counts[g]) {
        for (int64_t j = 0; j < n; ++j) ASSERT_EQ(row[j], -3.0f);
        continue;
      }
      std::vector<float> one(static_cast<size_t>(n));
      linear(x.data() + (g * m_max + i) * k, 1, k, *bs[size_t(g)], one.data(), n, ActQuant::kF32);
      for (int64_t j = 0; j < n; ++j) ASSERT_EQ(row[j], one[size_t(j)]);
    }
}

}  // namespace
}  // namespace dsinfer::kernels
