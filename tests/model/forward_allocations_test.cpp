// A forward step allocates nothing once the model has run its largest shape (the engine's
// start-up warm-up): every buffer grows to its high-water mark and stays. Counted with a
// replaced operator new over every thread (tests/support/allocation_counter.h).
#include <gtest/gtest.h>

#include <vector>

#include "allocation_counter.h"
#include "cache/kv_pool.h"
#include "model/deepseek.h"
#include "test_models.h"

namespace dsinfer::model {
namespace {

struct Seq {
  std::vector<int32_t> ids, table;
  int64_t done = 0;
};

// One step over every sequence: a prefill chunk of `chunk` tokens for those not started, one
// token for the rest. The batch and logits are the caller's, reused like the engine's.
void step(DeepSeekModel& m, cache::KvPool& pool, std::vector<Seq>& seqs, int64_t chunk, Batch& b,
          std::vector<float>& logits) {
  b.tokens.clear();
  b.seqs.clear();
  b.logits_rows.clear();
  for (Seq& s : seqs) {
    int64_t n = s.done == 0 ? chunk : 1;
    b.add(s.ids.data() + s.done, n, s.done, s.table.data(), Batch::Logits::kLast);
    s.done += n;
  }
  m.forward(b, pool.view(), logits.data());
}

class ForwardAllocations : public ::testing::TestWithParam<std::tuple<const char*, bool>> {};

TEST_P(ForwardAllocations, NoneAfterTheLargestStepHasRun) {
  auto [preset, fp8] = GetParam();
  ModelOptions opt;
  opt.fp8_kv_cache = fp8;
  auto m = DeepSeekModel::load(testing::tiny_model(preset, fp8), opt);
  const int64_t vocab = m->config().vocab_size;
  cache::KvPool pool(m->cache_spec(), 64);
  const int kSeqs = 4;
  const int64_t kPrefill = 100, kMaxTokens = 400;
  std::vector<float> logits(size_t(kSeqs * kPrefill) * size_t(vocab));
  Batch b;
  b.tokens.reserve(size_t(kSeqs * kPrefill));
  b.seqs.reserve(kSeqs);
  b.logits_rows.reserve(size_t(kSeqs * kPrefill));
  auto fresh = [&](int salt) {
    std::vector<Seq> seqs(kSeqs);
    for (int i = 0; i < kSeqs; ++i) {
      for (int64_t t = 0; t < kMaxTokens; ++t) seqs[size_t(i)].ids.push_back(int32_t((t * 7919 + i * 131 + salt) % vocab));
      EXPECT_TRUE(pool.allocate(pool.blocks_for(kMaxTokens), seqs[size_t(i)].table));
    }
    return seqs;
  };
  // Warm-up: the largest prefill step and a few decode steps, as the engine does at start.
  auto warm = fresh(1);
  step(*m, pool, warm, kPrefill, b, logits);
  for (int i = 0; i < 3; ++i) step(*m, pool, warm, 1, b, logits);
  for (auto& s : warm) pool.release(s.table);

  auto seqs = fresh(2);
  int64_t allocations = 0;
  {
    dsinfer::testing::AllocationWindow window;
    step(*m, pool, seqs, kPrefill / 2, b, logits);           // a smaller prefill
    for (int i = 0; i < 20; ++i) step(*m, pool, seqs, 1, b, logits);  // decode over a growing context
    allocations = window.count();
  }
  EXPECT_EQ(allocations, 0) << "heap allocations in 21 steady-state forward steps "
                               "(DSINFER_TRACE_ALLOCATIONS=1 prints where)";
}

INSTANTIATE_TEST_SUITE_P(Presets, ForwardAllocations,
                         ::testing::Values(std::make_tuple("tiny-v3", false), std::make_tuple("tiny-v3", true),
                                           std::make_tuple("tiny-v2lite", false)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) == "tiny-v3" ? (std::get<1>(info.param) ? "v3_fp8_cache" : "v3")
                                                                                   : "v2lite";
                         });

}  // namespace
}  // namespace dsinfer::model
