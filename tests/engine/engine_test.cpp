// The engine on a real (tiny, random) DeepSeek-V3 checkpoint with the real tokenizer.
#include "engine/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/timer.h"
#include "edited_checkpoint.h"
#include "stream_drain.h"
#include "test_helpers.h"

namespace dsinfer::engine {
namespace {

std::string tiny_model() { return dsinfer::testing::tiny_checkpoint("tiny-v3", 3, "engine"); }

std::unique_ptr<Engine> make_engine(EngineOptions opt, model::ModelOptions mo = {}) {
  std::string dir = tiny_model();
  auto m = model::DeepSeekModel::load(dir, mo);
  auto tok = tokenizer::Tokenizer::from_dir(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3");
  return std::make_unique<Engine>(std::move(m), std::move(tok), opt);
}

struct Result {
  std::map<int, std::vector<int32_t>> tokens;
  std::map<int, std::string> text;
  std::map<int, FinishReason> finish;
  Usage usage;
};

Result collect(RequestStream& s, double timeout_s = 60) {
  Result r;
  const bool done = dsinfer::testing::drain_stream(s, timeout_s, [&](const ChoiceUpdate& u) {
    auto& t = r.tokens[u.index];
    t.insert(t.end(), u.token_ids.begin(), u.token_ids.end());
    r.text[u.index] += u.text;
    if (u.finish != FinishReason::kNone) r.finish[u.index] = u.finish;
  });
  EXPECT_TRUE(done) << "request did not finish in time";
  r.usage = s.usage();
  return r;
}

using dsinfer::testing::prompt_of;

SamplingParams greedy(int64_t max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

bool wait_until(const std::function<bool()>& f, double timeout_s = 10) { return dsinfer::testing::eventually(f, timeout_s); }

// With either latent cache format (bf16, or FlashMLA's FP8 rows).
class EngineCache : public ::testing::TestWithParam<bool> {};

TEST_P(EngineCache, BatchedGreedyEqualsSoloAndBlocksAreReturned) {
  EngineOptions opt;
  opt.kv_blocks = 64;
  opt.max_batch_tokens = 96;  // forces chunked prefill of the longer prompts
  opt.prefix_caching = false;  // compare pure computation
  model::ModelOptions mo;
  mo.fp8_kv_cache = GetParam();
  auto e = make_engine(opt, mo);
  const int kN = 6;
  std::vector<std::vector<int32_t>> solo(kN);
  for (int i = 0; i < kN; ++i) {
    auto s = e->submit(prompt_of(20 + 37 * i, i), greedy(8));
    solo[size_t(i)] = collect(*s).tokens[0];
    ASSERT_EQ(solo[size_t(i)].size(), 8u);
  }
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < kN; ++i) streams.push_back(e->submit(prompt_of(20 + 37 * i, i), greedy(8)));
  for (int i = 0; i < kN; ++i) {
    auto r = collect(*streams[size_t(i)]);
    EXPECT_EQ(r.tokens[0], solo[size_t(i)]) << "request " << i;
    EXPECT_EQ(r.finish[0], FinishReason::kLength);
    EXPECT_EQ(r.usage.completion_tokens, 8);
  }
  ASSERT_TRUE(wait_until([&] { return e->idle(); }));
  ASSERT_TRUE(wait_until([&] { return e->metrics().kv_blocks_used == 0; }));
}

TEST_P(EngineCache, RepeatedPromptHitsThePrefixCache) {
  EngineOptions opt;
  opt.kv_blocks = 32;
  model::ModelOptions mo;
  mo.fp8_kv_cache = GetParam();
  auto e = make_engine(opt, mo);
  auto p = prompt_of(200, 1);
  auto first = collect(*e->submit(p, greedy(4)));
  EXPECT_EQ(first.usage.cached_tokens, 0);
  auto second = collect(*e->submit(p, greedy(4)));
  EXPECT_EQ(second.usage.cached_tokens, 192);  // three full blocks
  EXPECT_EQ(second.usage.prompt_tokens, 200);
  EXPECT_EQ(second.tokens[0], first.tokens[0]);
  auto m = e->metrics();
  EXPECT_EQ(m.cached_prompt_tokens, 192u);
}

INSTANTIATE_TEST_SUITE_P(Formats, EngineCache, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "fp8" : "bf16"; });

TEST(Engine, PreemptionUnderATinyPoolStillFinishesEveryRequest) {
  EngineOptions opt;
  opt.kv_blocks = 6;  // 384 tokens for four requests that need 4 x 130
  opt.max_batch_tokens = 256;
  auto e = make_engine(opt);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(e->submit(prompt_of(100, 10 + i), greedy(30)));
  for (auto& s : streams) {
    auto r = collect(*s);
    EXPECT_EQ(r.tokens[0].size(), 30u);
    EXPECT_EQ(r.finish[0], FinishReason::kLength);
  }
  auto m = e->metrics();
  EXPECT_GT(m.preemptions, 0u);
  ASSERT_TRUE(wait_until([&] { return e->metrics().kv_blocks_used == 0; }));
}

TEST(Engine, SeveralChoicesShareThePromptAndSeedsReproduce) {
  EngineOptions opt;
  opt.kv_blocks = 32;
  opt.prefix_caching = false;  // sharing must come from the fork, not the cache
  auto e = make_engine(opt);
  SamplingParams p;
  p.temperature = 1.0;
  p.n = 3;
  p.seed = 1234;
  p.max_tokens = 6;
  p.ignore_eos = true;
  p.logprobs = 2;
  auto a = collect(*e->submit(prompt_of(100, 3), p));
  auto b = collect(*e->submit(prompt_of(100, 3), p));
  ASSERT_EQ(a.tokens.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.tokens[i].size(), 6u);
    EXPECT_EQ(a.tokens[i], b.tokens[i]);
  }
  EXPECT_NE(a.tokens[0], a.tokens[1]);
  EXPECT_EQ(a.usage.completion_tokens, 18);
}

TEST(Engine, CancelFreesBlocksAtOnce) {
  EngineOptions opt;
  opt.kv_blocks = 32;
  auto e = make_engine(opt);
  auto s = e->submit(prompt_of(100, 5), greedy(1000));
  std::vector<ChoiceUpdate> ups;
  s->wait(ups, 10);  // first token
  // The block gauges are refreshed once per step, after its tokens are pushed: wait for them.
  ASSERT_TRUE(wait_until([&] { return e->metrics().kv_blocks_used > 0; }, 5));
  e->cancel(s);
  ASSERT_TRUE(wait_until([&] { return s->done(); }, 5));
  ASSERT_TRUE(wait_until([&] { return e->metrics().kv_blocks_used == 0; }, 5));
  EXPECT_EQ(e->metrics().requests_aborted, 1u);
}

TEST(Engine, StopTokenIdsAndEosFinishWithStop) {
  EngineOptions opt;
  opt.kv_blocks = 32;
  auto e = make_engine(opt);
  auto solo = collect(*e->submit(prompt_of(30, 9), greedy(5)));
  SamplingParams p = greedy(5);
  p.stop_token_ids = {solo.tokens[0][2]};
  auto r = collect(*e->submit(prompt_of(30, 9), p));
  EXPECT_EQ(r.finish[0], FinishReason::kStop);
  auto first = std::find(solo.tokens[0].begin(), solo.tokens[0].end(), solo.tokens[0][2]);
  EXPECT_EQ(r.tokens[0].size(), size_t(first - solo.tokens[0].begin() + 1));
}

TEST(Engine, RejectsBadRequestsAndAFullQueue) {
  EngineOptions opt;
  opt.kv_blocks = 8;
  opt.max_queued = 1;
  opt.max_running = 1;
  opt.max_batch_tokens = 64;
  auto e = make_engine(opt);
  EXPECT_THROW(e->submit({}, greedy(1)), Error);
  EXPECT_THROW(e->submit({-1}, greedy(1)), Error);
  EXPECT_THROW(e->submit({200000}, greedy(1)), Error);
  EXPECT_THROW(e->submit(prompt_of(10, 1), greedy(e->max_model_len())), Error);
  EXPECT_THROW(e->submit(prompt_of(600, 1), greedy(1)), Error);  // larger than the KV pool
  // One runs, one waits, the third is refused.
  auto a = e->submit(prompt_of(10, 1), greedy(200));
  ASSERT_TRUE(wait_until([&] { return e->metrics().running == 1; }));
  auto b = e->submit(prompt_of(10, 2), greedy(2));
  EXPECT_THROW(e->submit(prompt_of(10, 3), greedy(2)), QueueFull);
  e->cancel(a);
  collect(*b);
}

TEST(Engine, MaxTokensNearTwoToTheSixtyThreeIsRefusedNotOverflowed) {
  EngineOptions opt;
  opt.kv_blocks = 8;
  auto e = make_engine(opt);
  // len + max_tokens overflowed to a negative number, passed the checks, and the step thread
  // died in vector::reserve (std::length_error, process abort).
  for (int64_t huge : {INT64_MAX, INT64_MAX - 5, int64_t(1) << 62}) {
    EXPECT_THROW(e->submit(prompt_of(10, 1), greedy(huge)), Error) << huge;
  }
  auto r = collect(*e->submit(prompt_of(10, 1), greedy(3)));  // and the engine still serves
  EXPECT_EQ(r.tokens[0].size(), 3u);
}

TEST(Engine, NonFiniteLogitsFailThatRequestOnlyWithAReason) {
  const int32_t kPoison = 4242;
  std::string dir = dsinfer::testing::model_with_nan_token(tiny_model(), kPoison);
  model::ModelOptions mo;
  mo.check_weights = false;
  auto m = model::DeepSeekModel::load(dir, mo);
  auto tok = tokenizer::Tokenizer::from_dir(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3");
  EngineOptions opt;
  opt.kv_blocks = 32;
  Engine e(std::move(m), std::move(tok), opt);
  auto poisoned_prompt = prompt_of(20, 4);
  poisoned_prompt[7] = kPoison;
  // Sampled with top_k/top_p (the path that read before its candidate list) and greedily, with
  // n = 2 (a sibling must not run on), beside a healthy request in the same batches.
  SamplingParams sampled;
  sampled.temperature = 0.7;
  sampled.top_k = 5;
  sampled.top_p = 0.9;
  sampled.n = 2;
  sampled.max_tokens = 4;
  auto healthy = e.submit(prompt_of(20, 5), greedy(6));
  auto bad_sampled = e.submit(poisoned_prompt, sampled);
  auto bad_greedy = e.submit(poisoned_prompt, greedy(4));
  for (auto* s : {&bad_sampled, &bad_greedy}) {
    collect(**s);
    EXPECT_NE((*s)->error().find("non-finite logit"), std::string::npos) << (*s)->error();
  }
  auto ok = collect(*healthy);
  EXPECT_EQ(healthy->error(), "");
  EXPECT_EQ(ok.tokens[0].size(), 6u);
  auto after = e.submit(prompt_of(30, 6), greedy(3));  // still serving
  EXPECT_EQ(collect(*after).tokens[0].size(), 3u);
  EXPECT_EQ(after->error(), "");
  ASSERT_TRUE(wait_until([&] { return e.idle() && e.metrics().kv_blocks_used == 0; }));
  e.shutdown();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dsinfer::engine
