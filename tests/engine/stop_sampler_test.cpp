#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>

#include "base/error.h"
#include "engine/sampler.h"
#include "engine/validated_request.h"
#include "kernels/sampling.h"
#include "engine/stop_matcher.h"

namespace dsinfer::engine {
namespace {

TEST(StopMatcher, HoldsBackPossibleStopPrefixesAcrossPushes) {
  StopMatcher m({"STOP", "\n\n"});
  bool stopped = false;
  EXPECT_EQ(m.push("hello S", stopped), "hello ");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.push("T", stopped), "");
  EXPECT_EQ(m.push("x", stopped), "STx");  // not a stop after all: released
  EXPECT_EQ(m.push("ab\n", stopped), "ab");
  EXPECT_EQ(m.push("\nrest", stopped), "");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcher, StopSplitOverManyTokensIsNeverEmitted) {
  StopMatcher m({"<|end|>"});
  std::string out;
  bool stopped = false;
  for (const char* piece : {"abc<", "|e", "n", "d|", ">tail"}) {
    out += m.push(piece, stopped);
    if (stopped) break;
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "abc");
}

TEST(StopMatcher, FlushReleasesHeldTextAndNoStopsPassThrough) {
  StopMatcher m({"xyz"});
  bool stopped = false;
  EXPECT_EQ(m.push("abx", stopped), "ab");
  EXPECT_EQ(m.flush(), "x");
  StopMatcher none;
  EXPECT_EQ(none.push("anything", stopped), "anything");
}

// The matcher before KMP, kept as the reference: earliest start over all stops, else hold the
// longest tail that is a proper prefix of some stop.
std::string naive_push(const std::vector<std::string>& stops, std::string& held, std::string_view text, bool& stopped) {
  stopped = false;
  held.append(text);
  size_t first = std::string::npos;
  for (const auto& s : stops) first = std::min(first, held.find(s));
  if (first != std::string::npos) {
    stopped = true;
    std::string out = held.substr(0, first);
    held.clear();
    return out;
  }
  size_t keep = 0;
  for (const auto& s : stops)
    for (size_t len = std::min(s.size() - 1, held.size()); len > keep; --len)
      if (held.compare(held.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
  std::string out = held.substr(0, held.size() - keep);
  held.erase(0, held.size() - keep);
  return out;
}

TEST(StopMatcher, MatchesTheReferenceOnRandomText) {
  // A two-letter alphabet makes overlapping, self-similar stops (aab, abab) the common case.
  uint64_t rng = 99;
  auto rand_str = [&](size_t max_len) {
    std::string s(1 + size_t(kernels::uniform01(rng) * double(max_len)), 'a');
    for (char& c : s) c = kernels::uniform01(rng) < 0.5 ? 'a' : 'b';
    return s;
  };
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<std::string> stops;
    for (int k = 0, n = 1 + trial % 4; k < n; ++k) stops.push_back(rand_str(6));
    StopMatcher m(stops);
    std::string held, got, want;
    bool s1 = false, s2 = false;
    for (int step = 0; step < 30 && !s1; ++step) {
      std::string piece = rand_str(3);
      got += m.push(piece, s1);
      want += naive_push(stops, held, piece, s2);
      ASSERT_EQ(s1, s2) << trial;
      ASSERT_EQ(got, want) << trial;
    }
    if (!s1) {
      ASSERT_EQ(m.flush(), held);
    }
  }
}

TEST(StopMatcher, ChoicesShareOneStopSetAndLongStopsStayCheap) {
  auto set = std::make_shared<const StopSet>(std::vector<std::string>(kMaxStopStrings, std::string(kMaxStopBytes, 'x')));
  StopMatcher a(set), b(set);
  EXPECT_EQ(set.use_count(), 3);  // shared, not copied per choice
  bool stopped = false;
  // 1 KiB stops of one repeated byte: the old tail search was quadratic in the stop's length
  // for every stop and every token; this stays linear in the new text.
  std::string out;
  for (int i = 0; i < 1023; ++i) out += a.push("x", stopped);
  EXPECT_FALSE(stopped);
  EXPECT_EQ(out, "");
  EXPECT_EQ(a.push("x", stopped), "");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(b.push("xy", stopped), "xy");  // b has its own state
  EXPECT_FALSE(stopped);
}

std::vector<float> make_logits(int64_t n, uint64_t seed) {
  std::vector<float> l(static_cast<size_t>(n));
  uint64_t s = seed;
  for (auto& v : l) v = float(kernels::uniform01(s) * 8 - 4);
  return l;
}

TEST(Sampler, GreedyIsArgmaxAndPenaltiesChangeIt) {
  std::vector<float> l = {0.1f, 3.0f, 2.9f, -1.0f};
  Sampler s(4);
  SamplingParams p;
  p.temperature = 0;
  uint64_t rng = 1;
  std::vector<int32_t> toks = {7 % 4};
  SamplingContext ctx{&p, toks.data(), 1, 1, &rng};
  EXPECT_EQ(s.sample(l.data(), ctx, nullptr), 1);
  // Token 1 generated twice: a frequency penalty pushes it below token 2.
  std::vector<int32_t> gen = {0, 1, 1};
  p.frequency_penalty = 0.1;
  SamplingContext ctx2{&p, gen.data(), 1, 3, &rng};
  EXPECT_EQ(s.sample(l.data(), ctx2, nullptr), 2);
  // Repetition penalty counts the prompt too: token 1 in the prompt is divided by 2.
  SamplingParams r;
  r.temperature = 0;
  r.repetition_penalty = 2.0;
  std::vector<int32_t> prompt = {1};
  SamplingContext ctx3{&r, prompt.data(), 1, 1, &rng};
  EXPECT_EQ(s.sample(l.data(), ctx3, nullptr), 2);
  // The input row is never modified.
  EXPECT_EQ(l[1], 3.0f);
}

// Temperature 0 is the argmax; at temperature 1 the empirical frequencies follow softmax.
TEST(Sampler, ZeroTemperatureIsArgmaxAndOneFollowsSoftmax) {
  std::vector<float> logits = {0.1f, 2, 1.9f, -1, 0};
  Sampler s(5);
  SamplingParams p;
  p.temperature = 0;
  uint64_t state = 42;
  SamplingContext ctx{&p, nullptr, 0, 0, &state};
  EXPECT_EQ(s.sample(logits.data(), ctx, nullptr), 1);
  p.temperature = 1;
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 20000; ++i) counts[size_t(s.sample(logits.data(), ctx, nullptr))]++;
  double z = 0;
  for (float l : logits) z += std::exp(l);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(counts[size_t(i)] / 20000.0, std::exp(logits[i]) / z, 0.015) << i;
}

TEST(Sampler, SeededSamplingIsReproducibleAndFollowsTheDistribution) {
  const int64_t n = 1000;
  auto l = make_logits(n, 3);
  Sampler s(n);
  SamplingParams p;
  p.temperature = 0.7;
  std::vector<int32_t> none;
  auto run = [&](uint64_t seed) {
    std::vector<int32_t> out;
    uint64_t rng = seed;
    SamplingContext ctx{&p, none.data(), 0, 0, &rng};
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(l.data(), ctx, nullptr));
    return out;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(Sampler, TopKTopPAndMinPRestrictTheCandidates) {
  const int64_t n = 5000;
  auto l = make_logits(n, 11);
  std::vector<std::pair<float, int32_t>> order;
  for (int64_t i = 0; i < n; ++i) order.push_back({l[size_t(i)], int32_t(i)});
  std::sort(order.begin(), order.end(), std::greater<>());
  Sampler s(n);
  std::vector<int32_t> none;
  uint64_t rng = 9;
  auto draws = [&](const SamplingParams& p) {
    std::map<int32_t, int> seen;
    SamplingContext ctx{&p, none.data(), 0, 0, &rng};
    for (int i = 0; i < 300; ++i) ++seen[s.sample(l.data(), ctx, nullptr)];
    return seen;
  };
  SamplingParams k;
  k.top_k = 3;
  for (auto& [id, c] : draws(k)) EXPECT_TRUE(id == order[0].second || id == order[1].second || id == order[2].second);
  // top_p tiny: only the most likely token survives.
  SamplingParams tp;
  tp.top_p = 1e-6;
  auto only = draws(tp);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only.begin()->first, order[0].second);
  // min_p 1: only tokens as likely as the best.
  SamplingParams mp;
  mp.min_p = 1.0;
  auto best = draws(mp);
  ASSERT_EQ(best.size(), 1u);
  EXPECT_EQ(best.begin()->first, order[0].second);
  // A broad top_p samples many tokens.
  SamplingParams broad;
  broad.top_p = 0.9;
  EXPECT_GT(draws(broad).size(), 50u);
}

// The sampler's candidates (found through a histogram of weights, never a full sort) against a
// plain reference: sort everything, keep the top_k / top_p / min_p prefix, renormalise. Every
// draw must fall in the reference's kept set and the frequencies must follow its probabilities.
TEST(Sampler, FiltersMatchAFullSortReference) {
  const int64_t n = 4000;
  std::vector<float> l(static_cast<size_t>(n));
  uint64_t st = 17;
  for (auto& v : l) v = float(std::sqrt(-2 * std::log(kernels::uniform01(st) + 1e-300)) * 2.5);  // a long right tail
  struct Case {
    double t, top_p, min_p;
    int64_t top_k;
  };
  Sampler s(n);
  std::vector<int32_t> none;
  for (Case c : {Case{0.8, 0.5, 0, 0}, Case{1.0, 1.0, 0, 7}, Case{0.7, 0.8, 0, 5}, Case{1.2, 1.0, 0.2, 0}, Case{0.9, 0.95, 0.05, 40}}) {
    std::vector<std::pair<float, int32_t>> order;
    for (int64_t i = 0; i < n; ++i) order.push_back({l[size_t(i)], int32_t(i)});
    std::sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    const double mx = order[0].first;
    double total = 0;
    for (auto& o : order) total += std::exp((o.first - mx) / c.t);
    std::map<int32_t, double> keep;
    double cum = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      double w = std::exp((order[i].first - mx) / c.t);
      if (i > 0 && (w < c.min_p || cum >= c.top_p * total || (c.top_k > 0 && int64_t(i) >= c.top_k))) break;
      cum += w;
      keep[order[i].second] = w;
    }
    ASSERT_LT(keep.size(), 200u) << "the case should keep a small set";
    ASSERT_GT(keep.size(), 1u) << "and more than one token";
    SamplingParams p;
    p.temperature = c.t;
    p.top_p = c.top_p;
    p.top_k = c.top_k;
    p.min_p = c.min_p;
    uint64_t rng = 99;
    SamplingContext ctx{&p, none.data(), 0, 0, &rng};
    const int draws = 8000;
    std::map<int32_t, int> seen;
    for (int i = 0; i < draws; ++i) ++seen[s.sample(l.data(), ctx, nullptr)];
    for (auto& [id, cnt] : seen) ASSERT_TRUE(keep.count(id)) << "token " << id << " outside the reference set, t " << c.t;
    for (auto& [id, w] : keep) {
      const double prob = w / cum, f = double(seen[id]) / draws;
      EXPECT_NEAR(f, prob, 5 * std::sqrt(prob * (1 - prob) / draws) + 1e-3) << "token " << id << " t " << c.t;
    }
  }
}

TEST(Sampler, LogprobsAreLogSoftmaxWithTopAlternatives) {
  std::vector<float> l = {1.0f, 2.0f, 0.5f};
  Sampler s(3);
  TokenLogprob lp;
  s.logprobs(l.data(), 0, 2, lp);
  double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5));
  EXPECT_NEAR(lp.logprob, 1.0 - lse, 1e-6);
  ASSERT_EQ(lp.top.size(), 2u);
  EXPECT_EQ(lp.top[0].first, 1);
  EXPECT_EQ(lp.top[1].first, 0);
  EXPECT_NEAR(lp.top[0].second, 2.0 - lse, 1e-6);
}

TEST(SamplingParams, RejectsOutOfRangeValues) {
  const RequestLimits limits{1000, 4096, 100000};
  auto bad = [&](auto edit) {
    SamplingParams p;
    edit(p);
    EXPECT_THROW(validate_request(limits, {1, 2, 3}, p), Error);
  };
  bad([](SamplingParams& p) { p.temperature = -1; });
  bad([](SamplingParams& p) { p.temperature = NAN; });
  bad([](SamplingParams& p) { p.top_p = 0; });
  bad([](SamplingParams& p) { p.top_k = -2; });
  bad([](SamplingParams& p) { p.max_tokens = 0; });
  bad([](SamplingParams& p) { p.n = 0; });
  bad([](SamplingParams& p) { p.logprobs = 21; });
  bad([](SamplingParams& p) { p.stop = {""}; });
  bad([](SamplingParams& p) { p.presence_penalty = 3; });
  SamplingParams ok;
  EXPECT_NO_THROW(validate_request(limits, {1, 2, 3}, ok));
}

TEST(Sampler, TinyTemperaturesAreGreedyAndNeverOverflow) {
  const int64_t n = 1000;
  auto l = make_logits(n, 5);
  const int32_t best = kernels::argmax(l.data(), n);
  Sampler s(n);
  // 1e-40 made 1 / temperature inf, every weight NaN, the candidate list empty, and draw() read
  // before its start (SIGSEGV) whenever top_k or top_p asked for ranking.
  for (double t : {1e-40, 1e-300, 5e-324, 1e-6, kGreedyTemperature / 2}) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = 5;
    p.top_p = 0.9;
    uint64_t rng = 3;
    SamplingContext ctx{&p, nullptr, 0, 0, &rng};
    EXPECT_TRUE(p.greedy()) << t;
    EXPECT_EQ(s.sample(l.data(), ctx, nullptr), best) << t;
  }
  // At the threshold it samples, and a gap of one logit is e^-100000: still the best token.
  SamplingParams p;
  p.temperature = kGreedyTemperature;
  p.top_k = 5;
  EXPECT_FALSE(p.greedy());
  uint64_t rng = 3;
  SamplingContext ctx{&p, nullptr, 0, 0, &rng};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(l.data(), ctx, nullptr), best);
}

TEST(Sampler, HugeTemperaturesSampleNearlyUniformlyAndStayInRange) {
  // The API takes [0, 2] (OpenAI's range, engine/validated_request.cpp); the sampler itself is
  // total for any finite temperature: 1 / 1e300 flattens every weight to ~1, and draws spread
  // over the vocabulary, with and without ranking.
  const int64_t n = 50;
  auto l = make_logits(n, 7);
  Sampler s(n);
  for (double t : {2.0, 1e6, 1e300, 1.7e308}) {
    for (int64_t top_k : {int64_t(0), int64_t(10)}) {
      SamplingParams p;
      p.temperature = t;
      p.top_k = top_k;
      uint64_t rng = 11;
      SamplingContext ctx{&p, nullptr, 0, 0, &rng};
      std::vector<int> seen(size_t(n), 0);
      for (int i = 0; i < 2000; ++i) {
        const int32_t id = s.sample(l.data(), ctx, nullptr);
        ASSERT_TRUE(id >= 0 && id < n) << t;
        ++seen[size_t(id)];
      }
      const int64_t distinct = std::count_if(seen.begin(), seen.end(), [](int c) { return c > 0; });
      EXPECT_GE(distinct, top_k ? top_k : (t >= 1e6 ? n : 10)) << t << " top_k " << top_k;
    }
  }
}

TEST(Sampler, NonFiniteLogitsThrowInsteadOfReadingOutOfRange) {
  const int64_t n = 300;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (float bad : {nan, inf, -inf}) {
    for (int mode = 0; mode < 4; ++mode) {
      auto l = make_logits(n, 8);
      l[123] = bad;
      SamplingParams p;
      p.temperature = mode == 0 ? 0.0 : 0.8;
      p.top_k = mode == 2 ? 10 : 0;
      p.top_p = mode == 3 ? 0.5 : 1.0;
      p.logprobs = 2;
      uint64_t rng = 1;
      SamplingContext ctx{&p, nullptr, 0, 0, &rng};
      Sampler s(n);
      TokenLogprob lp;
      try {
        s.sample(l.data(), ctx, &lp);
        ADD_FAILURE() << "no error for " << bad << " in mode " << mode;
      } catch (const NonFiniteLogits& e) {
        EXPECT_NE(std::string(e.what()).find("token id 123"), std::string::npos) << e.what();
      }
    }
  }
}

TEST(Sampler, PenaltiesNeverPushALogitPastFloatRange) {
  // Dividing 3e38 by a repetition penalty of 0.5 gave +Inf, so max - max = NaN in every weight.
  std::vector<float> l = {3e38f, 1.0f, -3e38f, 0.5f};
  SamplingParams p;
  p.temperature = 1.0;
  p.top_k = 2;
  p.repetition_penalty = 0.5;
  std::vector<int32_t> ctx_tokens = {0, 2};
  uint64_t rng = 7;
  SamplingContext ctx{&p, ctx_tokens.data(), 2, 2, &rng};
  Sampler s(4);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(l.data(), ctx, nullptr), 0);
}

}  // namespace
}  // namespace dsinfer::engine
