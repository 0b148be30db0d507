#include "kernels/linear.h"

#include <gtest/gtest.h>

#include "reference.h"

namespace dsinfer::kernels {
namespace {

struct Quantized {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  std::vector<double> exact;  // the dequantised weight, by definition
  WeightView view;
};

// Builds an FP8 [n, k] weight with 128x128 block scales (partial edge blocks included).
Quantized make_fp8(int64_t n, int64_t k, uint32_t seed) {
  Quantized q;
  auto w = ref::randn(size_t(n * k), seed);
  int64_t sr = (n + 127) / 128, sc = (k + 127) / 128;
  q.scales.resize(size_t(sr * sc));
  for (size_t i = 0; i < q.scales.size(); ++i) q.scales[i] = 0.001f * float(1 + i % 7);
  q.bytes.resize(size_t(n * k));
  q.exact.resize(size_t(n * k));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) {
      float s = q.scales[size_t((r / 128) * sc + c / 128)];
      uint8_t b = f32_to_e4m3(w[size_t(r * k + c)] * 200.0f);
      if ((r + c) % 97 == 0) b = 0x7e;   // +448
      if ((r + c) % 89 == 0) b = 0xfe;   // -448
      if ((r + c) % 83 == 0) b = 0x03;   // subnormal
      q.bytes[size_t(r * k + c)] = b;
      q.exact[size_t(r * k + c)] = double(e4m3_to_f32(b)) * s;
    }
  q.view = {DType::kF8E4M3, q.bytes.data(), n, k, q.scales.data(), 128, 128, sc, 0};
  return q;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << "at " << i;
}

TEST(Linear, Fp8BlockScaledMatchesScalarReference) {
  for (auto [m, n, k] : {std::tuple{1, 1, 1}, {1, 300, 129}, {3, 128, 128}, {17, 257, 576}, {64, 130, 200}}) {
    Quantized w = make_fp8(n, k, uint32_t(n * 31 + k));
    auto x = ref::randn(size_t(m * k), uint32_t(m + 5));
    std::vector<float> y(size_t(m * n));
    linear(x.data(), m, w.view, y.data());
    std::vector<double> want(size_t(m * n));
    for (int i = 0; i < m; ++i)
      for (int r = 0; r < n; ++r) {
        double s = 0;
        for (int c = 0; c < k; ++c) s += double(x[size_t(i * k + c)]) * w.exact[size_t(r * k + c)];
        want[size_t(i * n + r)] = s;
      }
    expect_close(y, want, 1e-4);
  }
}

TEST(Linear, Bf16F16F32MatchScalarReference) {
  const int64_t m = 5, n = 33, k = 77;
  auto w = ref::randn(size_t(n * k), 3);
  auto x = ref::randn(size_t(m * k), 4);
  std::vector<uint16_t> bf(w.size()), hf(w.size());
  std::vector<double> exact_bf(w.size()), exact_hf(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    bf[i] = f32_to_bf16(w[i]);
    exact_bf[i] = bf16_to_f32(bf[i]);
    hf[i] = uint16_t(0x3c00 + (i % 512));  // fp16 values in [1, 2)
    exact_hf[i] = f16_to_f32(hf[i]);
  }
  struct Case {
    WeightView v;
    const std::vector<double>* exact;
  };
  std::vector<double> exact_f(w.begin(), w.end());
  for (auto c : {Case{{DType::kBF16, bf.data(), n, k}, &exact_bf}, Case{{DType::kF16, hf.data(), n, k}, &exact_hf},
                 Case{{DType::kF32, w.data(), n, k}, &exact_f}}) {
    std::vector<float> y(size_t(m * n));
    linear(x.data(), m, c.v, y.data());
    std::vector<double> want(size_t(m * n), 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < k; ++j) want[size_t(i * n + r)] += double(x[size_t(i * k + j)]) * (*c.exact)[size_t(r * k + j)];
    expect_close(y, want, 1e-4);
  }
}

TEST(Linear, RowResultDoesNotDependOnBatchSize) {
  Quantized w = make_fp8(200, 300, 9);
  auto x = ref::randn(size_t(40 * 300), 10);
  std::vector<float> all(size_t(40 * 200)), one(200);
  linear(x.data(), 40, w.view, all.data());
  for (int i = 0; i < 40; ++i) {
    linear(x.data() + i * 300, 1, w.view, one.data());
    for (int r = 0; r < 200; ++r) ASSERT_EQ(one[size_t(r)], all[size_t(i * 200 + r)]) << "row " << i;
  }
}

TEST(Linear, TransposedAndRowSlicesMatchReference) {
  Quantized w = make_fp8(300, 140, 11);
  WeightView slice = w.view.slice_rows(130, 150);  // crosses a scale-block boundary
  auto x = ref::randn(size_t(3 * 150), 12);
  std::vector<float> y(size_t(3 * 140));
  linear_transposed(x.data(), 3, 150, slice, y.data(), 140);
  std::vector<double> want(size_t(3 * 140), 0.0);
  for (int i = 0; i < 3; ++i)
    for (int r = 0; r < 150; ++r)
      for (int c = 0; c < 140; ++c) want[size_t(i * 140 + c)] += double(x[size_t(i * 150 + r)]) * w.exact[size_t((130 + r) * 140 + c)];
  expect_close(y, want, 1e-4);
}

}  // namespace
}  // namespace dsinfer::kernels
