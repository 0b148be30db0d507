// No allocation in the step loop, for real: after the engine's start-up warm-up, steady-state
// steps — schedule, one forward, sampling (greedy and top-p), detokenizing, stop matching,
// reporting to the streams, indexing blocks as they fill — allocate nothing on the engine's
// threads. Counted with a replaced operator new (tests/support/allocation_counter.h); the test's
// own thread, which reads the streams, is excluded.
#include <gtest/gtest.h>
#include <thread>

#include "allocation_counter.h"
#include "base/timer.h"
#include "engine/engine.h"
#include "test_helpers.h"

namespace dsinfer::engine {
namespace {

std::string tiny_model() { return dsinfer::testing::tiny_checkpoint("tiny-v3", 11, "engine-alloc"); }

// Without drafts, and with MTP's (two rows a sequence, and the module's passes after each step).
class StepAllocations : public ::testing::TestWithParam<int> {};

TEST_P(StepAllocations, NoneInSteadyStateDecodeSteps) {
  dsinfer::testing::AllocationWindow::exclude_this_thread();
  EngineOptions opt;
  opt.kv_blocks = 64;
  opt.max_running = 4;
  opt.max_batch_tokens = 128;
  opt.draft_tokens = GetParam();
  model::ModelOptions mo;
  mo.mtp = GetParam() > 0;
  auto m = model::DeepSeekModel::load(tiny_model(), mo);
  auto tok = tokenizer::Tokenizer::from_dir(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3");
  Engine e(std::move(m), std::move(tok), opt);

  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> prompt;
    for (int t = 0; t < 40 + 7 * i; ++t) prompt.push_back(int32_t(1000 + (t * 7919 + i * 104729) % 100000));
    SamplingParams p;
    p.max_tokens = 400;
    p.ignore_eos = true;
    if (i % 2) {  // half sample with a nucleus and stop strings that never match
      p.temperature = 0.8;
      p.top_p = 0.9;
      p.seed = uint64_t(i);
      p.stop = {"\x01never\x02", "\x03nor this"};
    } else {
      p.temperature = 0;
    }
    streams.push_back(e.submit(std::move(prompt), p));
  }
  std::vector<int64_t> tokens(streams.size(), 0);
  std::vector<ChoiceUpdate> ups;
  ups.reserve(16);
  // Reads every stream until each has `target` tokens (or one finished early).
  auto read_until = [&](int64_t target) {
    const double deadline = now_seconds() + 60;
    for (;;) {
      bool all = true;
      for (size_t i = 0; i < streams.size(); ++i) {
        ups.clear();
        bool done = streams[i]->wait(ups, 0.002);
        for (const auto& u : ups) tokens[i] += int64_t(u.token_ids.size());
        all = all && (tokens[i] >= target || done);
      }
      if (all || now_seconds() > deadline) return;
    }
  };
  read_until(80);  // every request past its prefill and 80 decode steps deep
  int64_t allocations = 0;
  {
    dsinfer::testing::AllocationWindow window;
    read_until(280);  // 200 more decode steps, crossing several 64-token block boundaries
    allocations = window.count();
  }
  for (size_t i = 0; i < streams.size(); ++i) EXPECT_GE(tokens[i], 280) << "request " << i << " ended early";
  EXPECT_EQ(allocations, 0) << "heap allocations on the engine's threads in ~200 steady-state steps "
                               "(DSINFER_TRACE_ALLOCATIONS=1 prints where)";
  for (auto& s : streams) e.cancel(s);
}

INSTANTIATE_TEST_SUITE_P(Drafts, StepAllocations, ::testing::Values(0, 1),
                         [](const auto& info) { return info.param ? "Mtp" : "Plain"; });

}  // namespace
}  // namespace dsinfer::engine
