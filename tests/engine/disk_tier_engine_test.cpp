// The engine with the prefix cache's disk tier: a prompt computed by one engine is a disk hit for
// the next on the same directory, with the very same output; a lookup that takes long holds up
// no other request (one with nothing to look up, one whose blocks are not on disk, a quicker
// hit); a corrupt block is recomputed; a request cancelled while its lookup runs ends
// at once.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "base/timer.h"
#include "cache/block_hash.h"
#include "cache/disk_block_format.h"
#include "engine/engine.h"
#include "stream_drain.h"
#include "test_helpers.h"

namespace dsinfer::engine {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;  // the chosen token's and the top 5, per token
  Usage usage;
  double first_token_time = 0, finish_time = 0;
  bool aborted = false;
};

Outcome run(RequestStream& s, double timeout_s = 60) {
  Outcome o;
  const bool done = dsinfer::testing::drain_stream(s, timeout_s, [&](const ChoiceUpdate& u) {
    if (!u.token_ids.empty() && o.first_token_time == 0) o.first_token_time = now_seconds();
    o.tokens.insert(o.tokens.end(), u.token_ids.begin(), u.token_ids.end());
    for (const TokenLogprob& lp : u.logprobs) {
      o.logprobs.push_back(lp.logprob);
      for (const auto& [id, v] : lp.top) o.logprobs.push_back(v);
    }
    o.aborted |= u.finish == FinishReason::kAbort;
  });
  EXPECT_TRUE(done) << "request did not finish in time";
  o.finish_time = now_seconds();
  o.usage = s.usage();
  return o;
}

// Drains every stream at once, each on a thread of its own, so that a first-token time is when
// the token came, not when the test got round to that stream.
std::vector<Outcome> run_together(const std::vector<std::shared_ptr<RequestStream>>& streams) {
  std::vector<Outcome> out(streams.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < streams.size(); ++i) threads.emplace_back([&, i] { out[i] = run(*streams[i]); });
  for (std::thread& t : threads) t.join();
  return out;
}

SamplingParams greedy(int64_t max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  p.logprobs = 5;
  return p;
}

using dsinfer::testing::prompt_of;

struct DiskEngineTest : ::testing::Test {
  std::string dir = dsinfer::testing::scratch_path("disk-tier-engine");
  void SetUp() override { fs::remove_all(dir); }
  void TearDown() override {
    fs::remove_all(dir);
    ::unsetenv("DSINFER_KV_DISK_READ_DELAY_MS");
  }
  std::unique_ptr<Engine> engine(bool fp8 = false, int64_t blocks = 32) {
    EngineOptions opt;
    opt.kv_blocks = blocks;
    opt.warm_up = false;
    opt.kv_disk_dir = dir;
    model::ModelOptions mo;
    mo.fp8_kv_cache = fp8;
    auto m = model::DeepSeekModel::load(dsinfer::testing::tiny_checkpoint("tiny-v3", 3, "engine"), mo);
    return std::make_unique<Engine>(std::move(m), dsinfer::testing::deepseek_v3_tokenizer(), opt);
  }
  // Block files of this directory.
  std::vector<fs::path> files() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().extension() == ".kvb") out.push_back(e.path());
    return out;
  }
};

TEST_F(DiskEngineTest, APromptComputedBeforeARestartIsADiskHitWithTheSameOutput) {
  for (bool fp8 : {false, true}) {
    SCOPED_TRACE(fp8 ? "fp8 cache" : "bf16 cache");
    fs::remove_all(dir);
    const auto p = prompt_of(3 * 64 + 20, 1);
    Outcome cold;
    {
      auto e = engine(fp8);
      cold = run(*e->submit(p, greedy(6)));
      EXPECT_EQ(cold.usage.cached_tokens, 0);
    }  // the engine's end finishes the writes queued
    EXPECT_EQ(files().size(), 3u) << "the prompt's three full blocks (its generated tokens fill no fourth)";
    auto e = engine(fp8);
    const Outcome hit = run(*e->submit(p, greedy(6)));
    EXPECT_EQ(hit.usage.cached_tokens, 192);
    EXPECT_EQ(hit.usage.disk_cached_tokens, 192);
    EXPECT_EQ(hit.tokens, cold.tokens);
    EXPECT_EQ(hit.logprobs, cold.logprobs) << "KV from disk is the KV computed, bit for bit";
    // Now in RAM: the next hit is the RAM's.
    const Outcome ram = run(*e->submit(p, greedy(6)));
    EXPECT_EQ(ram.usage.cached_tokens, 192);
    EXPECT_EQ(ram.usage.disk_cached_tokens, 0);
    EXPECT_EQ(ram.tokens, cold.tokens);
    const EngineMetrics m = e->metrics();
    ASSERT_TRUE(m.kv_disk.has_value());
    EXPECT_EQ(m.kv_disk->hit_blocks, 3u);
    EXPECT_EQ(m.cached_prompt_tokens, 384u);
    EXPECT_EQ(m.disk_cached_prompt_tokens, 192u);
  }
}

TEST_F(DiskEngineTest, ASlowLookupHoldsUpNoOtherRequest) {
  const auto p = prompt_of(2 * 64 + 10, 2);
  { run(*engine()->submit(p, greedy(2))); }
  ::setenv("DSINFER_KV_DISK_READ_DELAY_MS", "750", 1);  // per block file: 1.5 s
  auto e = engine();
  auto slow = e->submit(p, greedy(2));
  auto quick = e->submit(prompt_of(40, 3), greedy(2));  // no full block: no lookup
  const auto both = run_together({quick, slow});
  const Outcome& q = both[0];
  const Outcome& s = both[1];
  EXPECT_LT(q.finish_time, s.first_token_time) << "the request behind the slow lookup finished first";
  EXPECT_EQ(s.usage.disk_cached_tokens, 128);
}

TEST_F(DiskEngineTest, APromptWhoseBlocksAreNotOnDiskIsNotHeldUpByASlowLookup) {
  // B has full blocks, so it is looked up too, but none of them is on disk: its lookup is
  // answered at once, not after A's read.
  const auto a = prompt_of(2 * 64 + 10, 6);
  const auto b = prompt_of(2 * 64 + 10, 7);
  { run(*engine()->submit(a, greedy(2))); }
  ASSERT_EQ(files().size(), 2u) << "A's two blocks only";
  ::setenv("DSINFER_KV_DISK_READ_DELAY_MS", "750", 1);  // per block file: A's read takes 1.5 s
  auto e = engine();
  auto slow = e->submit(a, greedy(2));
  auto miss = e->submit(b, greedy(2));
  const auto both = run_together({slow, miss});
  const Outcome& s = both[0];
  const Outcome& m = both[1];
  EXPECT_LT(m.first_token_time, s.first_token_time) << "B's lookup finds nothing: it waits for no read";
  EXPECT_EQ(s.usage.disk_cached_tokens, 128);
  EXPECT_EQ(m.usage.cached_tokens, 0);
  const EngineMetrics metrics = e->metrics();
  EXPECT_EQ(metrics.kv_disk->lookups, 2u);
  EXPECT_EQ(metrics.kv_disk->hit_blocks, 2u);
  EXPECT_EQ(metrics.kv_disk->bad_blocks, 0u);
}

TEST_F(DiskEngineTest, AQuickDiskHitIsNotHeldUpByASlowerOne) {
  // Both on disk; A reads four block files, B one: lookups run concurrently, so B's hit comes
  // back (and B starts) while A's read is still going.
  const auto a = prompt_of(4 * 64 + 10, 8);
  const auto b = prompt_of(64 + 10, 9);
  Outcome a_cold, b_cold;
  {
    auto e = engine();
    a_cold = run(*e->submit(a, greedy(2)));
    b_cold = run(*e->submit(b, greedy(2)));
  }
  ASSERT_EQ(files().size(), 5u);
  ::setenv("DSINFER_KV_DISK_READ_DELAY_MS", "400", 1);  // per block file: A 1.6 s, B 0.4 s
  auto e = engine();
  auto slow = e->submit(a, greedy(2));
  auto quick = e->submit(b, greedy(2));
  const auto both = run_together({slow, quick});
  const Outcome& s = both[0];
  const Outcome& q = both[1];
  EXPECT_LT(q.first_token_time, s.first_token_time) << "B's one-block read passed A's four-block one";
  EXPECT_EQ(s.usage.disk_cached_tokens, 256);
  EXPECT_EQ(q.usage.disk_cached_tokens, 64);
  EXPECT_EQ(s.tokens, a_cold.tokens);
  EXPECT_EQ(q.tokens, b_cold.tokens);
  EXPECT_EQ(s.logprobs, a_cold.logprobs);
  EXPECT_EQ(q.logprobs, b_cold.logprobs);
}

TEST_F(DiskEngineTest, ACancelDuringTheLookupEndsTheRequestAndTheEngineGoesOn) {
  const auto p = prompt_of(2 * 64 + 10, 4);
  Outcome cold;
  { cold = run(*engine()->submit(p, greedy(3))); }
  ::setenv("DSINFER_KV_DISK_READ_DELAY_MS", "250", 1);  // per block file: 0.5 s
  auto e = engine();
  auto s = e->submit(p, greedy(3));
  e->cancel(s);
  const Outcome gone = run(*s, 5);
  EXPECT_TRUE(gone.aborted);
  EXPECT_TRUE(gone.tokens.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // its lookup comes back, unclaimed
  const Outcome again = run(*e->submit(p, greedy(3)));
  EXPECT_EQ(again.tokens, cold.tokens);
  EXPECT_TRUE(dsinfer::testing::eventually([&] { return e->idle(); }));
}

TEST_F(DiskEngineTest, ACorruptBlockIsRecomputedNeverUsedAndWrittenAgain) {
  const auto p = prompt_of(3 * 64 + 5, 5);
  Outcome cold;
  { cold = run(*engine()->submit(p, greedy(4))); }
  auto e = engine();
  // The second block's file, named by its chained key: one flipped byte in its rows.
  const uint64_t fingerprint = e->model().fingerprint();
  const auto keys = cache::prefix_keys(p.data(), int64_t(p.size()), 64, fingerprint, 3);
  const fs::path second =
      fs::path(dir) / cache::disk_block_path(cache::DiskBlockId::of(keys[1], fingerprint, e->model().cache_spec()));
  ASSERT_TRUE(fs::exists(second));
  {
    std::fstream f(second, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-7, std::ios::end);
    f.put('\x42');
  }
  const auto corrupt_size = fs::file_size(second);
  const Outcome o = run(*e->submit(p, greedy(4)));
  EXPECT_EQ(o.usage.cached_tokens, 64) << "the first block from disk; from the bad one on, computed";
  EXPECT_EQ(o.usage.disk_cached_tokens, 64);
  EXPECT_EQ(o.tokens, cold.tokens);
  EXPECT_EQ(o.logprobs, cold.logprobs);
  const EngineMetrics m = e->metrics();
  EXPECT_EQ(m.kv_disk->bad_blocks, 1u);
  EXPECT_EQ(m.kv_disk->hit_blocks, 1u);
  // Recomputed, so written through again: a sound file under the same name.
  ASSERT_TRUE(dsinfer::testing::eventually([&] { return e->metrics().kv_disk->written_blocks >= 1; }));
  EXPECT_EQ(fs::file_size(second), corrupt_size);
  std::ifstream in(second, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string why;
  EXPECT_EQ(cache::verify_disk_block(bytes.data(), bytes.size(),
                                     cache::DiskBlockId::of(keys[1], fingerprint, e->model().cache_spec()),
                                     p.data() + 64, why),
            cache::DiskBlockCheck::kGood)
      << why;
}

}  // namespace
}  // namespace dsinfer::engine
