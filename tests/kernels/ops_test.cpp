#include <gtest/gtest.h>

#include <complex>

#include "kernels/activation.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/routing.h"
#include "kernels/sampling.h"
#include "isa_test.h"
#include "kernels/vec.h"
#include "reference.h"

namespace dsinfer::kernels {
namespace {

// Kernels with a vector path per ISA run once per path this CPU supports.
class OpsIsa : public IsaTest {};

TEST_P(OpsIsa, RmsNormMatchesDefinition) {
  auto x = ref::randn(3 * 130, 1), w = ref::randn(130, 2);
  std::vector<float> y(x.size());
  rmsnorm(x.data(), 3, 130, 130, w.data(), 1e-6f, y.data(), 130);
  for (int i = 0; i < 3; ++i) {
    double ss = 0;
    for (int j = 0; j < 130; ++j) ss += double(x[size_t(i * 130 + j)]) * x[size_t(i * 130 + j)];
    double inv = 1 / std::sqrt(ss / 130 + 1e-6);
    for (int j = 0; j < 130; ++j) EXPECT_NEAR(y[size_t(i * 130 + j)], x[size_t(i * 130 + j)] * inv * w[size_t(j)], 1e-5);
  }
}

TEST_P(OpsIsa, SiluAndMulMatchesDefinitionOverWideRange) {
  // Odd width (vector tail), large |gate| (exp overflow/underflow), several rows.
  const int64_t m = 3, n = 37;
  auto gu = ref::randn(size_t(m * 2 * n), 4, 4.0f);
  gu[0] = 95.0f;
  gu[1] = -95.0f;
  std::vector<float> out(size_t(m * n));
  silu_and_mul(gu.data(), m, n, out.data());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double g = gu[size_t(i * 2 * n + j)], u = gu[size_t(i * 2 * n + n + j)];
      double want = g / (1 + std::exp(-g)) * u;
      ASSERT_NEAR(out[size_t(i * n + j)], want, 1e-6 * (1 + std::fabs(want))) << i << "," << j;
    }
}

TEST_P(OpsIsa, SiluAndMul) {
  std::vector<float> gu = {1, -2, 0.5f, 3, 4, -1};  // gate {1,-2,0.5}, up {3,4,-1}
  std::vector<float> out(3);
  silu_and_mul(gu.data(), 1, 3, out.data());
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(out[size_t(j)], gu[size_t(j)] / (1 + std::exp(-gu[size_t(j)])) * gu[size_t(j + 3)], 1e-6);
}

TEST(Ops, RopeRotatesInterleavedPairsAsComplexNumbers) {
  RopeParams p;
  p.dim = 8;
  int32_t pos[] = {0, 5, 4000};
  std::vector<float> cs(3 * 4), sn(3 * 4);
  rope_tables(p, pos, 3, cs.data(), sn.data());
  auto x = ref::randn(8, 3);
  for (int t = 0; t < 3; ++t) {
    auto y = x;
    apply_rope(y.data(), 1, 0, 8, cs.data() + t * 4, sn.data() + t * 4);
    for (int i = 0; i < 4; ++i) {
      std::complex<double> z(x[size_t(2 * i)], x[size_t(2 * i + 1)]);
      z *= std::polar(1.0, pos[t] * std::pow(10000.0, -2.0 * i / 8));
      EXPECT_NEAR(y[size_t(2 * i)], z.real(), 1e-5);
      EXPECT_NEAR(y[size_t(2 * i + 1)], z.imag(), 1e-5);
    }
  }
}

TEST(Ops, YarnFrequenciesFollowDeepSeekV3Ramp) {
  // V3: dim 64, base 1e4, factor 40, original 4096, beta 32/1: correction range [10, 23] by
  // dim*ln(4096/(2*pi*beta))/(2*ln(1e4)) floored/ceiled.
  RopeParams p;
  p.dim = 64;
  p.factor = 40;
  auto f = rope_inv_freq(p);
  for (int i = 0; i < 32; ++i) {
    double base = std::pow(10000.0, -2.0 * i / 64);
    double ramp = std::clamp((i - 10.0) / 13.0, 0.0, 1.0);
    EXPECT_NEAR(f[size_t(i)], base / 40 * ramp + base * (1 - ramp), 1e-12 * base) << i;
  }
  p.mscale = 1;
  p.mscale_all_dim = 1;
  EXPECT_DOUBLE_EQ(rope_magnitude(p), 1.0);
  p.mscale = 0.8;
  EXPECT_NEAR(rope_magnitude(p), (0.08 * std::log(40) + 1) / (0.1 * std::log(40) + 1), 1e-12);
}

TEST(Ops, NoauxTcRoutingByHand) {
  // 8 experts in 4 groups of 2, top_k 2 within topk_group 2. Bias flips the choice inside group 3.
  RoutingParams p;
  p.num_experts = 8;
  p.top_k = 2;
  p.num_groups = 4;
  p.topk_groups = 2;
  p.scoring = ScoringFunc::kSigmoid;
  p.method = TopkMethod::kNoauxTc;
  p.normalize = true;
  p.scaling = 2.5f;
  float bias[8] = {0, 0, 0, 0, 0, 0, 0.5f, 0};
  p.bias = bias;
  // sigmoid(logit): pick logits so scores are s.
  auto logit = [](double s) { return float(std::log(s / (1 - s))); };
  float logits[8] = {logit(0.9), logit(0.1), logit(0.5), logit(0.5), logit(0.2), logit(0.2), logit(0.3), logit(0.6)};
  // Group sums (biased top-2): g0 1.0, g1 1.0, g2 0.4, g3 0.8+0.6=1.4 -> groups 3 and (0 or 1 tie -> 0).
  // Candidates: e0 .9, e1 .1, e6 .8 (biased), e7 .6 -> top2: e0, e6. Weights use unbiased .9, .3.
  int32_t ids[2];
  float w[2];
  route_topk(logits, 1, p, ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 6);
  EXPECT_NEAR(w[0], 0.9 / 1.2 * 2.5, 1e-5);
  EXPECT_NEAR(w[1], 0.3 / 1.2 * 2.5, 1e-5);
}

TEST(Ops, GreedySoftmaxAndGroupLimitedRouting) {
  RoutingParams p;
  p.num_experts = 4;
  p.top_k = 2;
  p.scoring = ScoringFunc::kSoftmax;
  float logits[4] = {1, 3, 2, 0};
  int32_t ids[2];
  float w[2];
  route_topk(logits, 1, p, ids, w);
  double z = std::exp(1) + std::exp(3) + std::exp(2) + std::exp(0);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], std::exp(3) / z, 1e-6);
  // Group-limited: groups {0,1} {2,3}; only one group kept -> the best group's experts.
  p.method = TopkMethod::kGroupLimitedGreedy;
  p.num_groups = 2;
  p.topk_groups = 1;
  float l2[4] = {2.5f, 0, 3, -5};  // max of g0 = 2.5 < g1 = 3 -> group 1: experts 2, 3
  route_topk(l2, 1, p, ids, w);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 3);
}

TEST(Ops, V2GateDoesNotScaleNormalisedWeights) {
  RoutingParams p;
  p.num_experts = 3;
  p.top_k = 2;
  p.normalize = true;
  p.scaling = 16;
  p.scale_normalized = false;
  float logits[3] = {0, 1, 2};
  int32_t ids[2];
  float w[2];
  route_topk(logits, 1, p, ids, w);
  EXPECT_NEAR(w[0] + w[1], 1.0, 1e-6);
  p.scale_normalized = true;
  route_topk(logits, 1, p, ids, w);
  EXPECT_NEAR(w[0] + w[1], 16.0, 1e-5);
}

// The vectorised max, argmax and softmax weights against plain loops, with ties and a tail that
// is not a multiple of the vector width.
TEST_P(OpsIsa, MaxArgmaxAndExpWeightsMatchScalarLoops) {
  for (int64_t n : {1, 15, 16, 17, 1000, 129280}) {
    std::vector<float> x(static_cast<size_t>(n));
    uint64_t s = uint64_t(n);
    for (auto& v : x) v = float(uniform01(s) * 40 - 30);
    if (n > 20) x[size_t(n - 3)] = x[7] = 11.0f;  // a tie at the maximum: the lower id wins
    float mx = x[0];
    int64_t arg = 0;
    for (int64_t i = 1; i < n; ++i)
      if (x[size_t(i)] > mx) mx = x[size_t(i)], arg = i;
    EXPECT_EQ(max_value(x.data(), n), mx) << n;
    EXPECT_EQ(argmax(x.data(), n), arg) << n;
    std::vector<float> w(static_cast<size_t>(n));
    double sum = exp_weights(x.data(), n, mx, 1.25f, w.data()), ref_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      double ref = std::exp(double((x[size_t(i)] - mx) * 1.25f));  // the same float argument
      ref_sum += ref;
      ASSERT_NEAR(w[size_t(i)], ref, 4e-7 * ref + 1e-37) << "n " << n << " i " << i;
    }
    EXPECT_NEAR(sum, ref_sum, 1e-6 * ref_sum) << n;
  }
}

DSINFER_ISA_SUITE(OpsIsa);

// exp_poly's one definition and the fixed summation orders make these the same bits on every
// path (cpu_features.h): a seeded sample does not depend on the machine.
TEST(Ops, DotSiluAndExpWeightsAreBitIdenticalAcrossPaths) {
  for (int64_t n : {1L, 7L, 16L, 63L, 64L, 100L, 1000L, 4099L}) {
    auto a = ref::randn(size_t(n), uint32_t(n), 3.0f), b = ref::randn(size_t(n), uint32_t(n + 1), 3.0f);
    auto gu = ref::randn(size_t(2 * n), uint32_t(n + 2), 6.0f);
    float d0 = 0;
    std::vector<float> silu0, w0;
    double sum0 = 0;
    bool first = true;
    for (Isa isa : supported_isas()) {
      set_isa_override(isa);
      const float d = dot(a.data(), b.data(), n);
      std::vector<float> silu(static_cast<size_t>(n)), w(static_cast<size_t>(n));
      silu_and_mul(gu.data(), 1, n, silu.data());
      const double sum = exp_weights(a.data(), n, 2.0f, 0.7f, w.data());
      reset_isa_override();
      if (first) {
        d0 = d, silu0 = silu, w0 = w, sum0 = sum, first = false;
        continue;
      }
      EXPECT_EQ(d, d0) << isa_name(isa) << " n " << n;
      EXPECT_EQ(silu, silu0) << isa_name(isa) << " n " << n;
      EXPECT_EQ(w, w0) << isa_name(isa) << " n " << n;
      EXPECT_EQ(sum, sum0) << isa_name(isa) << " n " << n;
    }
  }
}

TEST(Ops, ArgmaxAndUniformDraws) {
  float logits[5] = {0.1f, 2, 1.9f, -1, 0};
  EXPECT_EQ(argmax(logits, 5), 1);
  // uniform01: in [0, 1), reproducible from the state, mean 1/2.
  uint64_t a = 42, b = 42;
  double sum = 0;
  for (int i = 0; i < 20000; ++i) {
    double u = uniform01(a);
    ASSERT_EQ(u, uniform01(b));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 20000, 0.5, 0.01);
}

}  // namespace
}  // namespace dsinfer::kernels
