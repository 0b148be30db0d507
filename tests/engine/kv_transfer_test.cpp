// Prefill/decode disaggregation at the engine level: a prefill engine's KvExport feeds a decode
// engine's KvImport directly (the transport is the serve layer's; tests/serve has it), and the
// decode engine must continue exactly as one engine serving the whole request would.
#include "engine/kv_transfer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>

#include "base/timer.h"
#include "engine/engine.h"
#include "stream_drain.h"
#include "test_helpers.h"

namespace dsinfer::engine {
namespace {

std::unique_ptr<Engine> make_engine(EngineOptions opt) {
  std::string dir = dsinfer::testing::tiny_checkpoint("tiny-v3", 3, "engine");
  auto m = model::DeepSeekModel::load(dir, {});
  auto tok = tokenizer::Tokenizer::from_dir(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3");
  return std::make_unique<Engine>(std::move(m), std::move(tok), opt);
}

EngineOptions small_options() {
  EngineOptions opt;
  opt.kv_blocks = 48;
  opt.max_batch_tokens = 96;  // a 200-token prompt prefills in three chunks
  opt.warm_up = false;
  return opt;
}

struct Output {
  std::map<int, std::vector<int32_t>> tokens;
  std::map<int, std::vector<float>> logprobs;
  std::string error;
  Usage usage;
  bool done = false;
};

Output collect(RequestStream& s, double timeout_s = 60) {
  Output o;
  o.done = dsinfer::testing::drain_stream(s, timeout_s, [&](const ChoiceUpdate& u) {
    auto& t = o.tokens[u.index];
    t.insert(t.end(), u.token_ids.begin(), u.token_ids.end());
    for (auto& lp : u.logprobs) o.logprobs[u.index].push_back(lp.logprob);
  });
  o.error = s.error();
  o.usage = s.usage();
  return o;
}

using dsinfer::testing::prompt_of;

// The transport reduced to a function call: every block of every layer is written into the
// import as soon as the prefill engine reports it, from the prefill engine's thread.
class LoopbackExport : public KvExport {
 public:
  LoopbackExport(std::shared_ptr<KvImport> to, uint32_t attempt) : to_(std::move(to)), attempt_(attempt) {}
  void layer_written(int64_t layer, const kernels::LatentCacheView& cache, const int32_t* table, int64_t rows) override {
    const int64_t bs = cache.block_size, row_bytes = cache.row_bytes();
    layers_seen_ = std::max(layers_seen_, layer + 1);
    for (int64_t b = 0; b * bs < rows; ++b) {
      const int64_t n = std::min(bs, rows - b * bs);
      const auto* src = static_cast<const uint8_t*>(cache.base) + size_t(table[b]) * size_t(bs * row_bytes);
      std::string why;
      EXPECT_TRUE(to_->write_rows(attempt_, layer, b, n, src, size_t(n * row_bytes), why)) << why;
    }
  }
  void prefill_done(const FirstToken& first) override {
    first_ = first;
    to_->first_token(attempt_, first);
  }
  int64_t layers_seen_ = 0;
  FirstToken first_;

 private:
  std::shared_ptr<KvImport> to_;
  uint32_t attempt_;
};

// The request through a prefill engine and a decode engine; `sent` (optional) gets what the
// prefill engine handed on with its first token.
Output disaggregated(Engine& prefill, Engine& decode, const std::vector<int32_t>& prompt, SamplingParams params,
                     double timeout_s = 30, FirstToken* sent = nullptr) {
  auto import = std::make_shared<KvImport>(int64_t(prompt.size()), timeout_s);
  auto stream = decode.submit_import(validate_request(decode.limits(), prompt, params), import);
  EXPECT_EQ(import->wait_reserved(10), KvImport::State::kReserved) << import->error();
  SamplingParams first = params;
  first.n = 1;
  first.max_tokens = 1;
  auto exporter = std::make_shared<LoopbackExport>(import, 0);
  auto pstream = prefill.submit(validate_request(prefill.limits(), prompt, first), exporter);
  Output p = collect(*pstream);
  EXPECT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(exporter->layers_seen_, prefill.model().cache_spec().num_layers);  // the MTP module's too, with drafts
  if (sent) *sent = exporter->first_;
  return collect(*stream);
}

Output together(Engine& e, const std::vector<int32_t>& prompt, const SamplingParams& params) {
  return collect(*e.submit(prompt, params));
}

SamplingParams params_of(double temperature, int64_t max_tokens, std::optional<uint64_t> seed = {}, int64_t n = 1) {
  SamplingParams p;
  p.temperature = temperature;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  p.seed = seed;
  p.n = n;
  return p;
}

class KvTransferEngines : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    both_ = make_engine(small_options()).release();
    prefill_ = make_engine(small_options()).release();
    decode_ = make_engine(small_options()).release();
  }
  static void TearDownTestSuite() {
    delete both_;
    delete prefill_;
    delete decode_;
  }

 public:
  static void expect_idle(Engine& e) {
    EXPECT_TRUE(dsinfer::testing::eventually([&] { return e.idle() && e.metrics().kv_blocks_used == 0; }, 10))
        << e.metrics().kv_blocks_used << " KV blocks still in use";
  }

 protected:
  static Engine* both_;
  static Engine* prefill_;
  static Engine* decode_;
};
Engine* KvTransferEngines::both_ = nullptr;
Engine* KvTransferEngines::prefill_ = nullptr;
Engine* KvTransferEngines::decode_ = nullptr;

TEST_F(KvTransferEngines, GreedyTokensAndLogprobsEqualOneEngine) {
  for (int64_t len : {1, 5, 64, 65, 200}) {
    SCOPED_TRACE(len);
    const auto prompt = prompt_of(len, int32_t(len));
    SamplingParams p = params_of(0, 9);
    p.logprobs = 2;
    const Output want = together(*both_, prompt, p);
    const Output got = disaggregated(*prefill_, *decode_, prompt, p);
    ASSERT_TRUE(got.error.empty()) << got.error;
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_EQ(got.logprobs, want.logprobs);  // the first token's come from the prefill side
    EXPECT_EQ(got.usage.prompt_tokens, want.usage.prompt_tokens);
    EXPECT_EQ(got.usage.completion_tokens, 9);
  }
  expect_idle(*decode_);
  expect_idle(*prefill_);
}

TEST_F(KvTransferEngines, SeededSamplingContinuesTheSameRandomStream) {
  const auto prompt = prompt_of(70, 3);
  const SamplingParams p = params_of(1.0, 12, 1234);
  const Output want = together(*both_, prompt, p);
  const Output got = disaggregated(*prefill_, *decode_, prompt, p);
  ASSERT_TRUE(got.error.empty()) << got.error;
  EXPECT_EQ(got.tokens, want.tokens);
}

TEST_F(KvTransferEngines, SeveralChoicesRecomputeTheLastPromptPositionAndFork) {
  const auto prompt = prompt_of(130, 4);
  const SamplingParams p = params_of(1.0, 6, 99, 3);
  const Output want = together(*both_, prompt, p);
  const Output got = disaggregated(*prefill_, *decode_, prompt, p);
  ASSERT_TRUE(got.error.empty()) << got.error;
  ASSERT_EQ(got.tokens.size(), 3u);
  EXPECT_EQ(got.tokens, want.tokens);
  expect_idle(*decode_);
}

TEST_F(KvTransferEngines, APrefixCachedOnThePrefillSideStillTravelsWhole) {
  const auto prompt = prompt_of(150, 5);
  const SamplingParams p = params_of(0, 5);
  const Output first = disaggregated(*prefill_, *decode_, prompt, p);
  const Output second = disaggregated(*prefill_, *decode_, prompt, p);  // 128 tokens hit the prefill side's cache
  ASSERT_TRUE(second.error.empty()) << second.error;
  EXPECT_EQ(second.tokens, first.tokens);
  EXPECT_EQ(second.usage.cached_tokens, 128);  // the prefill side's hit, reported by the decode side
  EXPECT_EQ(first.usage.cached_tokens, 0);
}

TEST_F(KvTransferEngines, KvThatNeverArrivesTimesOutAndFreesTheBlocks) {
  const auto prompt = prompt_of(100, 6);
  auto import = std::make_shared<KvImport>(100, 0.3);
  auto stream = decode_->submit_import(validate_request(decode_->limits(), prompt, params_of(0, 4)), import);
  ASSERT_EQ(import->wait_reserved(10), KvImport::State::kReserved);
  EXPECT_TRUE(dsinfer::testing::eventually([&] { return decode_->metrics().kv_blocks_used >= 2; }, 5));  // reserved
  const Output o = collect(*stream, 10);
  EXPECT_TRUE(o.done);
  EXPECT_NE(o.error.find("went silent"), std::string::npos) << o.error;
  EXPECT_TRUE(o.tokens.empty() || o.tokens.at(0).empty());
  // Rows arriving late are refused, never written into blocks someone else may hold now.
  std::vector<uint8_t> row(352 * 64);
  std::string why;
  EXPECT_TRUE(import->write_rows(0, 0, 0, 64, row.data(), row.size(), why));
  EXPECT_EQ(import->bytes_written(), 0u);
  expect_idle(*decode_);
}

TEST_F(KvTransferEngines, HeartbeatsKeepAQueuedTransferAlive) {
  const auto prompt = prompt_of(90, 8);
  auto import = std::make_shared<KvImport>(90, 0.3);
  auto stream = decode_->submit_import(validate_request(decode_->limits(), prompt, params_of(0, 3)), import);
  ASSERT_EQ(import->wait_reserved(10), KvImport::State::kReserved);
  for (int i = 0; i < 8; ++i) {  // 0.8 s of a prefill side that is alive but has not started
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    import->touch();
  }
  EXPECT_EQ(import->state(), KvImport::State::kReserved);
  SamplingParams first = params_of(0, 1);
  auto exporter = std::make_shared<LoopbackExport>(import, 0);
  collect(*prefill_->submit(validate_request(prefill_->limits(), prompt, first), exporter));
  const Output got = collect(*stream);
  EXPECT_TRUE(got.error.empty()) << got.error;
  EXPECT_EQ(got.tokens, together(*both_, prompt, params_of(0, 3)).tokens);
}

TEST_F(KvTransferEngines, ACancelledImportFreesItsReservation) {
  const auto prompt = prompt_of(300, 7);
  auto import = std::make_shared<KvImport>(300, 30.0);
  auto stream = decode_->submit_import(validate_request(decode_->limits(), prompt, params_of(0, 4)), import);
  ASSERT_EQ(import->wait_reserved(10), KvImport::State::kReserved);
  EXPECT_TRUE(dsinfer::testing::eventually([&] { return decode_->metrics().kv_blocks_used >= 5; }, 5));
  decode_->cancel(stream);
  collect(*stream, 10);
  EXPECT_EQ(import->state(), KvImport::State::kFailed);
  expect_idle(*decode_);
}

TEST(KvTransferRoom, AReservationThatDoesNotFitIsRefused) {
  EngineOptions opt = small_options();
  opt.kv_blocks = 4;  // 256 tokens
  auto decode = make_engine(opt);
  SamplingParams p = params_of(0, 2);
  auto a = std::make_shared<KvImport>(200, 30.0);
  auto sa = decode->submit_import(validate_request(decode->limits(), prompt_of(200, 1), p), a);
  ASSERT_EQ(a->wait_reserved(10), KvImport::State::kReserved);
  auto b = std::make_shared<KvImport>(200, 30.0);
  auto sb = decode->submit_import(validate_request(decode->limits(), prompt_of(200, 2), p), b);
  ASSERT_EQ(b->wait_reserved(10), KvImport::State::kFailed);
  EXPECT_NE(b->error().find("no room"), std::string::npos) << b->error();
  EXPECT_FALSE(collect(*sb, 5).error.empty());
  decode->cancel(sa);
  collect(*sa, 5);
}

// Speculative decoding across the split, on the trained demo model (its MTP module drafts well
// enough for drafts to be both accepted and rejected). The prefill engine sends the module's KV
// layer with the others and its drafts after the first token; the decode engine's first step
// verifies them. Its output is greedy decoding's without drafts, and since every draft then
// comes from the same module rows, its drafts and acceptances are one engine's with drafts,
// count for count: a module row lost or misplaced on the way would change which drafts it makes.
TEST(KvTransferWithDrafts, TheModuleRowsAndDraftsTravelAndDecodingContinuesAsOneEngine) {
  const std::string demo = std::string(DSINFER_ASSETS_DIR) + "/demo-model";
  auto engine_with = [&](int drafts) {
    model::ModelOptions mo;
    mo.mtp = drafts > 0;
    EngineOptions opt = small_options();
    opt.draft_tokens = drafts;
    return std::make_unique<Engine>(model::DeepSeekModel::load(demo, mo), tokenizer::Tokenizer::from_dir(demo), opt);
  };
  auto plain = engine_with(0);
  SamplingParams p = params_of(0, 24);
  for (int k : {1, 2}) {
    SCOPED_TRACE(k);
    auto both = engine_with(k), prefill = engine_with(k), decode = engine_with(k);
    // 63 and 64 tokens: a chained draft's row past the prompt's last block, or in it.
    for (int64_t len : {5L, 63L, 64L, 150L}) {
      SCOPED_TRACE(len);
      std::vector<int32_t> prompt;
      for (int64_t i = 0; i < len; ++i) prompt.push_back(int32_t(2 + (i * 7919 + len) % 4000));
      const Output want = together(*plain, prompt, p);
      const EngineMetrics one_before = both->metrics(), split_before = decode->metrics();
      const Output one = together(*both, prompt, p);
      FirstToken sent;
      const Output got = disaggregated(*prefill, *decode, prompt, p, 30, &sent);
      ASSERT_TRUE(got.error.empty()) << got.error;
      EXPECT_EQ(one.tokens, want.tokens);
      EXPECT_EQ(got.tokens, want.tokens);
      EXPECT_FALSE(sent.drafts.empty());
      EXPECT_LE(sent.drafts.size(), size_t(k));
      const EngineMetrics one_after = both->metrics(), split_after = decode->metrics();
      EXPECT_EQ(split_after.mtp_drafted - split_before.mtp_drafted, one_after.mtp_drafted - one_before.mtp_drafted);
      EXPECT_EQ(split_after.mtp_accepted - split_before.mtp_accepted, one_after.mtp_accepted - one_before.mtp_accepted);
      EXPECT_GT(split_after.mtp_drafted, split_before.mtp_drafted);
    }
    const EngineMetrics m = decode->metrics();
    EXPECT_GT(m.mtp_accepted, 0u);
    EXPECT_LT(m.mtp_accepted, m.mtp_drafted);
    KvTransferEngines::expect_idle(*decode);
    KvTransferEngines::expect_idle(*prefill);
  }
}

// KvImport on its own: what it accepts, in which order, and from which attempt.
class KvImportRows : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_.num_layers = 2;
    spec_.dim = 8;
    spec_.rope_dim = 4;
    spec_.dtype = DType::kF32;
    spec_.block_size = 4;
    pool_.assign(size_t(spec_.num_layers * 8 * spec_.block_size * spec_.row_bytes()), 0);
    view_ = {pool_.data(), spec_, 8};
    import_ = std::make_shared<KvImport>(6, 60.0);  // 2 blocks: 4 rows + 2 rows
    import_->reserved(view_, {5, 2});
  }
  bool write(uint32_t attempt, int64_t layer, int64_t block, int64_t rows, uint8_t fill, std::string& why) {
    std::vector<uint8_t> data(size_t(rows * spec_.row_bytes()), fill);
    return import_->write_rows(attempt, layer, block, rows, data.data(), data.size(), why);
  }
  void fill_all(uint32_t attempt, uint8_t fill) {
    std::string why;
    for (int l = 0; l < 2; ++l) {
      ASSERT_TRUE(write(attempt, l, 0, 4, fill, why)) << why;
      ASSERT_TRUE(write(attempt, l, 1, 2, fill, why)) << why;
    }
  }
  kernels::KvCacheSpec spec_;
  std::vector<uint8_t> pool_;
  kernels::KvCacheView view_;
  std::shared_ptr<KvImport> import_;
};

TEST_F(KvImportRows, RowsLandInTheReservedBlocksOfTheirLayer) {
  std::string why;
  ASSERT_TRUE(write(0, 1, 1, 2, 0xab, why)) << why;
  const size_t row = size_t(spec_.row_bytes()), block = row * 4, layer = block * 8;
  EXPECT_EQ(pool_[layer + 2 * block], 0xab);             // layer 1, block id 2, row 0
  EXPECT_EQ(pool_[layer + 2 * block + 2 * row - 1], 0xab);  // its second row's last byte
  EXPECT_EQ(pool_[layer + 2 * block + 2 * row], 0);         // nothing past the rows sent
  EXPECT_EQ(pool_[2 * block], 0);                           // layer 0 untouched
}

TEST_F(KvImportRows, RowsOutsideTheReservationAreRefused) {
  std::string why;
  EXPECT_FALSE(write(0, 2, 0, 4, 1, why));  // no layer 2
  EXPECT_FALSE(write(0, 0, 2, 1, 1, why));  // no block 2
  EXPECT_FALSE(write(0, 0, 1, 3, 1, why));  // block 1 holds 2 prompt rows
  EXPECT_FALSE(write(0, 0, 0, 0, 1, why));
  EXPECT_NE(why.find("outside the reservation"), std::string::npos);
  std::vector<uint8_t> short_data(10);
  EXPECT_FALSE(import_->write_rows(0, 0, 0, 1, short_data.data(), short_data.size(), why));
  EXPECT_EQ(import_->bytes_written(), 0u);
}

TEST_F(KvImportRows, ReadyNeedsEveryRowAndTheFirstTokenInEitherOrder) {
  import_->first_token(0, {42, 7, std::nullopt, 0});
  EXPECT_EQ(import_->state(), KvImport::State::kReserved);
  std::string why;
  ASSERT_TRUE(write(0, 0, 0, 4, 1, why));
  ASSERT_TRUE(write(0, 0, 1, 1, 1, why));  // a partial block, completed later
  ASSERT_TRUE(write(0, 1, 0, 4, 1, why));
  ASSERT_TRUE(write(0, 1, 1, 2, 1, why));
  EXPECT_EQ(import_->state(), KvImport::State::kReserved);
  ASSERT_TRUE(write(0, 0, 1, 2, 1, why));
  EXPECT_EQ(import_->state(), KvImport::State::kReady);
  EXPECT_EQ(import_->first().id, 42);
  EXPECT_EQ(import_->first().rng, 7u);
}

TEST_F(KvImportRows, ANewAttemptStartsOverAndOldAttemptsAreIgnored) {
  fill_all(0, 1);
  ASSERT_TRUE(import_->begin_attempt(1));  // the router retried the prefill elsewhere
  import_->first_token(0, {1, 1, std::nullopt, 0});  // the failed attempt's late token: ignored
  import_->first_token(1, {2, 2, std::nullopt, 0});
  EXPECT_EQ(import_->state(), KvImport::State::kReserved);  // attempt 1's rows are still missing
  fill_all(1, 2);
  ASSERT_EQ(import_->state(), KvImport::State::kReady);
  EXPECT_EQ(import_->first().id, 2);
  EXPECT_FALSE(import_->begin_attempt(0));
}

TEST_F(KvImportRows, FailIsFinalAndStopsWrites) {
  import_->fail("checksum");
  std::string why;
  EXPECT_TRUE(write(0, 0, 0, 4, 9, why));  // accepted as a message, but nothing is written
  EXPECT_EQ(import_->bytes_written(), 0u);
  EXPECT_EQ(import_->state(), KvImport::State::kFailed);
  EXPECT_EQ(import_->error(), "checksum");
}

}  // namespace
}  // namespace dsinfer::engine
