// Speculative decoding with the MTP module (engine/mtp_drafter.h), on the trained demo model
// (assets/demo-model), whose module drafts well enough that every test sees drafts both accepted
// and rejected: the output with drafts is the output without them (greedy, seeded sampling, in
// any batch, with stops and lengths), and independent samples keep the target distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/engine.h"
#include "stream_drain.h"
#include "test_helpers.h"

namespace dsinfer::engine {
namespace {

const std::string kDemo = std::string(DSINFER_ASSETS_DIR) + "/demo-model";

std::unique_ptr<Engine> make_engine(int draft_tokens, EngineOptions opt = {}) {
  model::ModelOptions mo;
  mo.mtp = draft_tokens > 0;
  opt.draft_tokens = draft_tokens;
  if (opt.kv_blocks == 0) opt.kv_blocks = 256;
  return std::make_unique<Engine>(model::DeepSeekModel::load(kDemo, mo), tokenizer::Tokenizer::from_dir(kDemo), opt);
}

struct Output {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kNone;
  Usage usage;
};

Output collect(RequestStream& s) {
  Output o;
  const bool done = dsinfer::testing::drain_stream(s, 120, [&](const ChoiceUpdate& u) {
    o.tokens.insert(o.tokens.end(), u.token_ids.begin(), u.token_ids.end());
    o.text += u.text;
    if (u.finish != FinishReason::kNone) o.finish = u.finish;
  });
  EXPECT_TRUE(done) << "request did not finish in time";
  EXPECT_EQ(s.error(), "");
  o.usage = s.usage();
  return o;
}

const std::vector<std::string> kPrompts = {
    "The jury said",
    "He was a little",
    "It is not",
    "The committee will meet on Monday to discuss the new plan for the county's schools, and",
    "In the afternoon",
    "She looked at the",
    "The President of the United States",
    "There is no reason to believe that",
};

SamplingParams params(int64_t max_tokens, double temperature = 0, uint64_t seed = 0) {
  SamplingParams p;
  p.max_tokens = max_tokens;
  p.temperature = temperature;
  p.seed = seed;
  p.ignore_eos = true;
  return p;
}

// Every prompt at once (continuous batching: sequences with different acceptance share steps),
// or one after another.
std::vector<Output> run_all(Engine& e, const std::vector<SamplingParams>& ps, bool together) {
  std::vector<Output> out;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    auto s = e.submit(e.tokenizer().encode_prompt(kPrompts[i]), ps[i]);
    if (together) streams.push_back(s);
    else out.push_back(collect(*s));
  }
  for (auto& s : streams) out.push_back(collect(*s));
  return out;
}

std::vector<SamplingParams> same(const SamplingParams& p) { return std::vector<SamplingParams>(kPrompts.size(), p); }

TEST(MtpSpeculative, GreedyOutputIsTheSameWithDraftsInAnyBatch) {
  auto plain = make_engine(0);
  const std::vector<Output> want = run_all(*plain, same(params(40)), true);
  for (int k : {1, 2, 3}) {
    for (bool together : {false, true}) {
      auto e = make_engine(k);
      const std::vector<Output> got = run_all(*e, same(params(40)), together);
      for (size_t i = 0; i < kPrompts.size(); ++i)
        EXPECT_EQ(got[i].tokens, want[i].tokens) << "k " << k << (together ? ", batched" : ", alone") << ": " << kPrompts[i];
      const EngineMetrics m = e->metrics();
      // Both paths taken: drafts accepted (several tokens a step) and rejected (rolled back).
      EXPECT_GT(m.mtp_accepted, 0u) << "k " << k;
      EXPECT_LT(m.mtp_accepted, m.mtp_drafted) << "k " << k;
      EXPECT_GT(m.mtp_emitted, m.mtp_verify_steps) << "k " << k;
      EXPECT_EQ(m.draft_tokens, k);
    }
  }
}

TEST(MtpSpeculative, SeededSamplingIsTheSameWithDrafts) {
  std::vector<SamplingParams> ps;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    SamplingParams p = params(32, 0.8, 100 + i);
    p.top_p = i % 2 ? 0.9 : 1.0;
    p.top_k = i % 3 == 0 ? 40 : 0;
    p.repetition_penalty = i % 4 == 1 ? 1.2 : 1.0;  // penalties see the tokens accepted so far
    ps.push_back(p);
  }
  auto plain = make_engine(0);
  const std::vector<Output> want = run_all(*plain, ps, true);
  auto e = make_engine(2);
  const std::vector<Output> got = run_all(*e, ps, true);
  for (size_t i = 0; i < kPrompts.size(); ++i) EXPECT_EQ(got[i].tokens, want[i].tokens) << kPrompts[i];
  EXPECT_GT(e->metrics().mtp_accepted, 0u);
}

// Pearson's chi-squared statistic of two samples' histograms over the same bins.
double chi_squared(const std::vector<double>& a, const std::vector<double>& b) {
  double na = 0, nb = 0, x = 0;
  for (size_t i = 0; i < a.size(); ++i) na += a[i], nb += b[i];
  for (size_t i = 0; i < a.size(); ++i) {
    const double total = a[i] + b[i];
    if (total == 0) continue;
    const double ea = total * na / (na + nb), eb = total * nb / (na + nb);
    x += (a[i] - ea) * (a[i] - ea) / ea + (b[i] - eb) * (b[i] - eb) / eb;
  }
  return x;
}

TEST(MtpSpeculative, SamplesKeepTheTargetDistribution) {
  // Independent samples (different seeds) with and without drafts: the histograms of the second
  // and third generated tokens, which pass through draft verification, must agree. The bins are
  // the ten commonest tokens without drafts and "any other"; the 0.999 quantile of chi-squared
  // with 10 degrees of freedom is 29.6.
  const int kSamples = 400;
  auto histograms = [&](int k, uint64_t seed0) {
    auto e = make_engine(k, [] {
      EngineOptions o;
      o.max_running = 64;
      o.max_queued = 1000;
      return o;
    }());
    const std::vector<int32_t> prompt = e->tokenizer().encode_prompt("The jury said");
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < kSamples; ++i) streams.push_back(e->submit(prompt, params(3, 1.0, seed0 + uint64_t(i))));
    std::vector<std::map<int32_t, double>> h(2);
    for (auto& s : streams) {
      const Output o = collect(*s);
      EXPECT_EQ(o.tokens.size(), 3u);
      for (size_t j = 1; j < 3 && j < o.tokens.size(); ++j) h[j - 1][o.tokens[j]] += 1;
    }
    if (k > 0) {
      EXPECT_GT(e->metrics().mtp_accepted, 0u);
    }
    return h;
  };
  const auto without = histograms(0, 1);
  const auto with = histograms(1, 1000001);
  for (size_t j = 0; j < 2; ++j) {
    std::vector<std::pair<double, int32_t>> top;
    for (auto& [id, n] : without[j]) top.push_back({n, id});
    std::sort(top.rbegin(), top.rend());
    top.resize(std::min<size_t>(top.size(), 10));
    std::vector<double> a(top.size() + 1, 0), b(top.size() + 1, 0);
    for (auto& [id, n] : without[j]) {
      size_t bin = top.size();
      for (size_t t = 0; t < top.size(); ++t)
        if (top[t].second == id) bin = t;
      a[bin] += n;
    }
    for (auto& [id, n] : with[j]) {
      size_t bin = top.size();
      for (size_t t = 0; t < top.size(); ++t)
        if (top[t].second == id) bin = t;
      b[bin] += n;
    }
    EXPECT_LT(chi_squared(a, b), 29.6) << "generated token " << j + 2;
  }
}

TEST(MtpSpeculative, StopStringsMaxTokensAndUsageStayExact) {
  auto plain = make_engine(0);
  auto e = make_engine(3);
  for (size_t i = 0; i < 4; ++i) {
    const std::vector<int32_t> prompt = plain->tokenizer().encode_prompt(kPrompts[i]);
    // max_tokens: exactly that many, however many a step emits.
    for (int64_t n : {1, 2, 5, 7}) {
      const Output o = collect(*e->submit(prompt, params(n)));
      EXPECT_EQ(int64_t(o.tokens.size()), n) << kPrompts[i];
      EXPECT_EQ(o.usage.completion_tokens, n);
      EXPECT_EQ(o.finish, FinishReason::kLength);
    }
    // A stop string from the middle of the text: the same text and reason as without drafts.
    const Output full = collect(*plain->submit(prompt, params(30)));
    ASSERT_GT(full.text.size(), 12u);
    SamplingParams p = params(30);
    p.stop = {full.text.substr(full.text.size() / 2, 4)};
    const Output want = collect(*plain->submit(prompt, p));
    const Output got = collect(*e->submit(prompt, p));
    EXPECT_EQ(got.text, want.text) << kPrompts[i];
    EXPECT_EQ(got.finish, FinishReason::kStop);
    EXPECT_EQ(got.usage.completion_tokens, want.usage.completion_tokens);
  }
  // EOS honoured (ignore_eos off): the same as without drafts.
  SamplingParams p = params(200);
  p.ignore_eos = false;
  const std::vector<int32_t> prompt = plain->tokenizer().encode_prompt(kPrompts[0]);
  EXPECT_EQ(collect(*e->submit(prompt, p)).tokens, collect(*plain->submit(prompt, p)).tokens);
}

TEST(MtpSpeculative, PrefixHitsRecomputeTheirLastToken) {
  // B shares A's first 128 tokens (two whole blocks): B hits them and recomputes the last one,
  // whose MTP row was written for A's next token (cache::BlockManager's lookahead; the block
  // manager's tests check the copy). B's tokens equal B's alone.
  auto tok = tokenizer::Tokenizer::from_dir(kDemo);
  std::vector<int32_t> a = tok.encode_prompt(
      "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced no "
      "evidence that any irregularities took place. The jury further said in term-end presentments that the City "
      "Executive Committee, which had over-all charge of the election, deserves the praise and thanks of the City of "
      "Atlanta for the manner in which the election was conducted. The September-October term jury had been charged "
      "by Fulton Superior Court Judge Durwood Pye to investigate reports of possible irregularities in the primary.");
  ASSERT_GT(a.size(), 140u);
  std::vector<int32_t> b(a.begin(), a.begin() + 128);
  for (const char* word : {" The", " mayor", " said", " that"}) {
    const std::vector<int32_t> w = tok.encode(word);
    b.insert(b.end(), w.begin(), w.end());
  }
  auto alone = make_engine(1);
  const Output want = collect(*alone->submit(b, params(24)));
  auto shared = make_engine(1);
  collect(*shared->submit(a, params(8)));
  const Output got = collect(*shared->submit(b, params(24)));
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.usage.cached_tokens, 127) << "two blocks hit, the last token recomputed";
  EXPECT_GT(shared->metrics().mtp_accepted, 0u);
}

// A step budget that stops a prompt one token short of its end: that token still runs as a
// prompt chunk (no drafts from the rows before it), so the logits are those of a prompt cut
// anywhere else, and a request for several choices forks from them: each choice is what it is
// without drafts (seeded sampling), which a fork from a later step's logits would not give.
TEST(MtpSpeculative, APromptCutOneTokenShortEndsAsAPrompt) {
  EngineOptions opt;
  opt.max_batch_tokens = 16;
  opt.max_running = 4;
  auto plain = make_engine(0, opt), drafting = make_engine(1, opt);
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 17; ++i) prompt.push_back(2 + (i * 211) % 4000);  // 16 + 1: cut one short
  EXPECT_EQ(collect(*drafting->submit(prompt, params(12))).tokens, collect(*plain->submit(prompt, params(12))).tokens);
  SamplingParams two = params(6, 0.8, 7);
  two.n = 2;
  auto choices_of = [&](Engine& e) {
    auto stream = e.submit(prompt, two);
    std::map<int, std::vector<int32_t>> choices;
    const bool done = dsinfer::testing::drain_stream(*stream, 60, [&](const ChoiceUpdate& u) {
      auto& t = choices[u.index];
      t.insert(t.end(), u.token_ids.begin(), u.token_ids.end());
    });
    EXPECT_TRUE(done) << "a request for two choices did not finish";
    EXPECT_EQ(stream->error(), "");
    return choices;
  };
  const auto want = choices_of(*plain);
  ASSERT_EQ(want.size(), 2u);
  EXPECT_EQ(choices_of(*drafting), want);
}

TEST(MtpSpeculative, RefusesAModelWithoutItsModule) {
  model::ModelOptions mo;  // loaded without the module
  auto m = model::DeepSeekModel::load(kDemo, mo);
  EngineOptions opt;
  opt.kv_blocks = 16;
  opt.draft_tokens = 1;
  try {
    Engine e(std::move(m), tokenizer::Tokenizer::from_dir(kDemo), opt);
    FAIL() << "an engine drafted without the MTP module";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("MTP module"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace dsinfer::engine
