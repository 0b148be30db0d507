// ExpertParallelMoe against LocalMoe, bit for bit, under mpirun with 2 and 4 ranks (and alone):
// every rank routes its own tokens (a different number on each rank, none on rank 1) through the
// group, and its result must equal what LocalMoe computes for the same tokens in one process —
// for both dispatch modes, bf16 / FP8 / fp32 payloads, and contiguous and redundant placements.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/local_moe.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weights.h"
#include "mpi_world.h"
#include "parallel/expert_load_recorder.h"
#include "parallel/expert_parallel_moe.h"
#include "parallel/online_eplb.h"
#include "routed_tokens.h"
#include "scratch.h"

namespace dsinfer::parallel {
namespace {

using model::ExpertActivations;
using model::Precision;

// Each rank writes its own copy (same seed, same bytes): no rank waits for another's file.
std::string checkpoint(const std::string& preset, bool fp8) {
  const std::string dir = dsinfer::testing::scratch_path(preset + (fp8 ? "-fp8" : ""));
  if (!std::filesystem::exists(dir + "/config.json")) {
    model::RandomCheckpointOptions opt;
    opt.fp8 = fp8;
    opt.seed = 11;
    model::write_random_checkpoint(model::preset_config(preset), dir, opt);
  }
  return dir;
}

// A preset's checkpoint, loaded: what most tests here start from.
struct Loaded {
  explicit Loaded(const std::string& preset, bool fp8 = false)
      : dir(checkpoint(preset, fp8)),
        cfg(model::load_config(dir + "/config.json")),
        ckpt(model::Checkpoint::open(dir)),
        weights(model::ModelWeights::load(ckpt, cfg)) {}
  std::string dir;
  model::ModelConfig cfg;
  model::Checkpoint ckpt;
  model::ModelWeights weights;
};

// One redundant slot per rank, holding experts 0..N-1 a second time, the slots shuffled by a
// seed every rank shares.
std::string redundant_placement(const model::ModelConfig& cfg, int ranks) {
  nlohmann::json rows = nlohmann::json::array();
  std::mt19937 rng(5);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    if (!cfg.is_moe_layer(l)) continue;
    std::vector<int32_t> row(size_t(cfg.n_routed_experts));
    std::iota(row.begin(), row.end(), 0);
    for (int r = 0; r < ranks; ++r) row.push_back(r);
    std::shuffle(row.begin(), row.end(), rng);
    rows.push_back(row);
  }
  const std::string path = dsinfer::testing::scratch_path("placement.json");
  std::ofstream(path) << nlohmann::json{{"phy2log", rows}}.dump();
  return path;
}

// What the shared experts left in the output before the routed ones add to it.
std::vector<float> random_base(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

struct Case {
  std::string preset;
  bool fp8_weights;
  Precision precision;
  ExpertActivations activations;
  DispatchMode mode;
  bool redundant = false;
  int64_t capacity = 32;
  bool expect_low_latency = false;
};

std::string name_of(const Case& c) {
  return c.preset + (c.fp8_weights ? "/fp8-weights" : "/bf16-weights") +
         (c.precision == Precision::kFp32 ? "/fp32" : c.activations == ExpertActivations::kFp8 ? "/fp8-dispatch" : "/bf16-dispatch") +
         (c.mode == DispatchMode::kNormal ? "/normal" : c.mode == DispatchMode::kLowLatency ? "/low-latency" : "/auto") +
         (c.redundant ? "/redundant" : "");
}

void check_case(const Case& c) {
  SCOPED_TRACE(name_of(c));
  Communicator& comm = testing::world();
  const std::string dir = checkpoint(c.preset, c.fp8_weights);
  const model::ModelConfig cfg = model::load_config(dir + "/config.json");
  const model::Checkpoint ckpt = model::Checkpoint::open(dir);
  const model::ModelWeights weights = model::ModelWeights::load(ckpt, cfg);
  ExpertPlacement placement = c.redundant ? ExpertPlacement::from_eplb_json(redundant_placement(cfg, comm.size()), cfg, comm.size())
                                          : ExpertPlacement::contiguous(cfg, comm.size());
  ExpertParallelOptions opt;
  opt.precision = c.precision;
  opt.activations = c.activations;
  opt.mode = c.mode;
  opt.low_latency_tokens = c.capacity;
  ExpertParallelMoe ep(comm, placement, cfg, opt);
  ep.prepare(weights, nullptr);
  model::LocalMoe local(weights, c.precision, c.activations);

  // A different token count per rank; rank 1 has none but still takes part.
  const int64_t counts[] = {5, 0, 17, 3};
  const int64_t T = counts[comm.rank() % 4];
  const int64_t D = cfg.hidden_size, K = cfg.num_experts_per_tok;
  const auto before = ep.stats();
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {  // every MoE layer: per-layer placements
    if (!cfg.is_moe_layer(l)) continue;
    const dsinfer::testing::RoutedTokens t = dsinfer::testing::random_routed_tokens(cfg, T, uint64_t(comm.rank() * 1000 + l));
    const std::vector<float> base = random_base(T * D, uint64_t(comm.rank() * 1000 + l) + 7);
    model::MoeInput in{int(l), 0, 0, t.x.data(), t.ids.data(), t.w.data(), T, int(K)};
    std::vector<float> expected = base, got = base;
    local.run(in, expected.data());
    ep.run(in, got.data());
    size_t differ = 0;
    float worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      if (std::memcmp(&got[i], &expected[i], sizeof(float)) != 0) ++differ, worst = std::max(worst, std::fabs(got[i] - expected[i]));
    EXPECT_EQ(differ, 0u) << "rank " << comm.rank() << " layer " << l << ": " << differ << " of " << T * D
                          << " values differ from one process (worst " << worst << ")";
    // The executor really computed something where there were tokens.
    if (T > 0) {
      EXPECT_NE(std::memcmp(got.data(), base.data(), got.size() * sizeof(float)), 0);
    }
  }
  const auto after = ep.stats();
  const uint64_t ll = after.low_latency_layers - before.low_latency_layers, normal = after.normal_layers - before.normal_layers;
  if (c.expect_low_latency) EXPECT_GT(ll, 0u) << "expected the low-latency mode";
  else EXPECT_EQ(ll, 0u) << "expected the normal mode";
  EXPECT_EQ(ll + normal, uint64_t(cfg.num_hidden_layers - cfg.first_k_dense_replace));
  if (comm.size() > 1 && T > 0) {
    EXPECT_GT(after.dispatch_bytes_sent, before.dispatch_bytes_sent);
  }
}

TEST(ExpertParallel, NormalDispatchEqualsOneProcess) {
  for (Precision p : {Precision::kDefault, Precision::kFp32}) {
    check_case({"tiny-v3", false, p, ExpertActivations::kBf16, DispatchMode::kNormal});
    check_case({"tiny-v2lite", false, p, ExpertActivations::kBf16, DispatchMode::kNormal});
  }
  check_case({"tiny-v3", true, Precision::kDefault, ExpertActivations::kBf16, DispatchMode::kNormal});
  check_case({"tiny-v3", true, Precision::kDefault, ExpertActivations::kFp8, DispatchMode::kNormal});
  check_case({"tiny-v2lite", true, Precision::kDefault, ExpertActivations::kFp8, DispatchMode::kNormal});
}

TEST(ExpertParallel, LowLatencyDispatchEqualsOneProcess) {
  for (Precision p : {Precision::kDefault, Precision::kFp32}) {
    check_case({"tiny-v3", false, p, ExpertActivations::kBf16, DispatchMode::kLowLatency, false, 32, true});
    check_case({"tiny-v2lite", false, p, ExpertActivations::kBf16, DispatchMode::kLowLatency, false, 32, true});
  }
  check_case({"tiny-v3", true, Precision::kDefault, ExpertActivations::kBf16, DispatchMode::kLowLatency, false, 32, true});
  check_case({"tiny-v3", true, Precision::kDefault, ExpertActivations::kFp8, DispatchMode::kLowLatency, false, 32, true});
  check_case({"tiny-v2lite", true, Precision::kDefault, ExpertActivations::kFp8, DispatchMode::kLowLatency, false, 32, true});
}

TEST(ExpertParallel, RedundantReplicasEqualOneProcess) {
  for (DispatchMode m : {DispatchMode::kNormal, DispatchMode::kLowLatency}) {
    check_case({"tiny-v3", true, Precision::kDefault, ExpertActivations::kFp8, m, true, 32, m == DispatchMode::kLowLatency});
    check_case({"tiny-v2lite", false, Precision::kDefault, ExpertActivations::kBf16, m, true, 32,
                m == DispatchMode::kLowLatency});
  }
}

TEST(ExpertParallel, AutoModeFollowsTheLargestRank) {
  // Rank 2 has 17 tokens: over a capacity of 8 the whole group goes normal, under 32 low latency.
  const bool someone_large = testing::world().size() > 2;
  const bool alone_small = testing::world().size() == 1;  // rank 0 alone has 5
  check_case({"tiny-v3", false, Precision::kDefault, ExpertActivations::kBf16, DispatchMode::kAuto, false, 8,
              alone_small || (!someone_large && testing::world().size() == 2)});
  check_case({"tiny-v3", false, Precision::kDefault, ExpertActivations::kBf16, DispatchMode::kAuto, false, 32, true});
}

// Two calls in flight, as the two-micro-batch overlap makes them: both dispatches posted before
// either micro-batch's experts run, both combines before either is waited for. Each must still
// equal one process.
TEST(ExpertParallel, TwoMicroBatchesInFlightEqualOneProcess) {
  Communicator& comm = testing::world();
  const Loaded tiny("tiny-v3");
  const model::ModelConfig& cfg = tiny.cfg;
  const model::ModelWeights& weights = tiny.weights;
  model::LocalMoe local(weights);
  for (DispatchMode mode : {DispatchMode::kNormal, DispatchMode::kLowLatency}) {
    SCOPED_TRACE(mode == DispatchMode::kNormal ? "normal" : "low latency");
    ExpertParallelOptions opt;
    opt.mode = mode;
    opt.low_latency_tokens = 32;
    ExpertParallelMoe ep(comm, ExpertPlacement::contiguous(cfg, comm.size()), cfg, opt);
    ep.prepare(weights, nullptr);
    const int64_t T[2] = {int64_t(3 + comm.rank()), comm.rank() == 1 ? 0 : 6};  // an empty one on rank 1
    const int64_t D = cfg.hidden_size, K = cfg.num_experts_per_tok;
    for (int64_t l = cfg.first_k_dense_replace; l < cfg.num_hidden_layers; ++l) {
      dsinfer::testing::RoutedTokens t[2] = {
          dsinfer::testing::random_routed_tokens(cfg, T[0], uint64_t(comm.rank() * 100 + l)),
          dsinfer::testing::random_routed_tokens(cfg, T[1], uint64_t(comm.rank() * 100 + l + 50))};
      model::MoeInput in[2];
      std::vector<float> expected[2], got[2];
      for (int m = 0; m < 2; ++m) {
        in[m] = {int(l), m, m == 0 ? 0 : T[0], t[m].x.data(), t[m].ids.data(), t[m].w.data(), T[m], int(K)};
        expected[m] = got[m] = random_base(T[m] * D, uint64_t(l * 2 + m));
        local.run(in[m], expected[m].data());
      }
      ep.begin(in[0]);
      ep.begin(in[1]);
      ep.compute(0);
      ep.compute(1);
      ep.progress();
      ep.finish(0, got[0].data());
      ep.finish(1, got[1].data());
      for (int m = 0; m < 2; ++m) EXPECT_EQ(got[m], expected[m]) << "micro-batch " << m << " layer " << l;
    }
  }
}

// Online EPLB under a skewed load (every token picks two experts of rank 0): a plan that replicates the
// hot experts, the weights moved and checksummed, one switch on every rank, and afterwards the
// executor still computes exactly what one process does.
TEST(ExpertParallel, OnlineRebalanceMovesExpertsAndKeepsResults) {
  Communicator& comm = testing::world();
  if (comm.size() == 1) GTEST_SKIP() << "needs a group";
  const Loaded tiny("tiny-v3");
  const model::ModelConfig& cfg = tiny.cfg;
  const model::ModelWeights& weights = tiny.weights;
  model::LocalMoe local(weights);
  const int moe_layers = int(cfg.num_hidden_layers - cfg.first_k_dense_replace);
  ExpertLoad even(moe_layers, int(cfg.n_routed_experts));
  std::fill(even.values.begin(), even.values.end(), 1.0);
  const int slots = int(cfg.n_routed_experts) + comm.size();
  ExpertParallelMoe ep(comm, ExpertPlacement::from_load(even, cfg, comm.size(), slots, EplbPolicy::kDeepSeek), cfg, {});
  ep.prepare(weights, nullptr);
  ExpertLoadRecorder recorder(ExpertLoadRecorderOptions::for_model(cfg));
  OnlineEplbOptions oo;
  oo.interval_steps = 1;
  OnlineEplb eplb(comm, ep, recorder, cfg, oo);
  const ExpertPlacement before = ep.placement();
  // A skewed step: two experts rank 0 holds take every token, so rank 0 is the busiest.
  const int first = int(cfg.first_k_dense_replace);
  const std::vector<int32_t> on_rank0 = before.local_experts(first, 0);
  const int32_t hot[2] = {on_rank0[0], on_rank0[1] != on_rank0[0] ? on_rank0[1] : on_rank0[2]};
  std::vector<int32_t> ids;
  for (int t = 0; t < 64; ++t) {
    ids.push_back(hot[0]);
    ids.push_back(hot[1]);
    for (int k = 2, e = t; k < int(cfg.num_experts_per_tok); ++e)
      if (e % 16 != hot[0] && e % 16 != hot[1]) ids.push_back(int32_t(e % 16)), ++k;
  }
  for (int l = 0; l < moe_layers; ++l) recorder.on_routing(first + l, ids.data(), 64, int(cfg.num_experts_per_tok));
  recorder.on_step_end();
  for (int i = 0; i < 1000 && eplb.metrics().rebalances == 0 && eplb.metrics().aborted == 0; ++i)
    eplb.at_step_boundary(i == 0);
  const OnlineEplbMetrics m = eplb.metrics();
  ASSERT_EQ(m.rebalances, 1u) << "skipped " << m.skipped << ", aborted " << m.aborted;
  EXPECT_GT(m.bytes_moved, 0u);
  EXPECT_LT(m.imbalance_after, m.imbalance_before);
  EXPECT_FALSE(ep.placement() == before);
  int hot_replicas = 0;
  for (int s = 0; s < slots; ++s) hot_replicas += ep.placement().logical(first, s) == hot[0];
  EXPECT_GE(hot_replicas, 2) << "the hot expert got a replica";
  const int64_t T = 7, D = cfg.hidden_size, K = cfg.num_experts_per_tok;
  for (int64_t l = cfg.first_k_dense_replace; l < cfg.num_hidden_layers; ++l) {
    const dsinfer::testing::RoutedTokens t = dsinfer::testing::random_routed_tokens(cfg, T, uint64_t(comm.rank() * 10 + l));
    model::MoeInput in{int(l), 0, 0, t.x.data(), t.ids.data(), t.w.data(), T, int(K)};
    std::vector<float> expected = random_base(T * D, 3), got = expected;
    local.run(in, expected.data());
    ep.run(in, got.data());
    EXPECT_EQ(got, expected) << "layer " << l << " after the switch";
  }
}

// --eplb-interval in seconds: rank 0's clock decides, and every rank plans at the same boundary
// (the plan's broadcast and allreduces would hang or time out otherwise).
TEST(ExpertParallel, OnlineRebalanceBySecondsPlansOnEveryRankTogether) {
  Communicator& comm = testing::world();
  if (comm.size() == 1) GTEST_SKIP() << "needs a group";
  const Loaded tiny("tiny-v3");
  const model::ModelConfig& cfg = tiny.cfg;
  const model::ModelWeights& weights = tiny.weights;
  ExpertParallelMoe ep(comm, ExpertPlacement::contiguous(cfg, comm.size()), cfg, {});
  ep.prepare(weights, nullptr);
  ExpertLoadRecorder recorder(ExpertLoadRecorderOptions::for_model(cfg));
  OnlineEplbOptions oo;
  oo.interval_seconds = 0.01;
  OnlineEplb eplb(comm, ep, recorder, cfg, oo);
  // No load recorded: each plan is skipped, on every rank alike.
  for (int i = 0; i < 400 && eplb.metrics().skipped < 2; ++i) {
    eplb.at_step_boundary(false);
    ::usleep(1000);
  }
  const uint64_t skipped = eplb.metrics().skipped;
  EXPECT_GE(skipped, 2u);
  EXPECT_EQ(comm.allreduce_max(int64_t(skipped), "skips"), int64_t(skipped)) << "every rank planned as often";
  EXPECT_EQ(eplb.metrics().rebalances, 0u);
}

TEST(ExpertParallel, PlacementFileIsValidated) {
  const std::string dir = checkpoint("tiny-v3", false);
  const model::ModelConfig cfg = model::load_config(dir + "/config.json");
  const std::string path = dsinfer::testing::scratch_path("bad-placement.json");
  auto message = [&](const std::string& text) {
    std::ofstream(path) << text;
    try {
      ExpertPlacement::from_eplb_json(path, cfg, 2);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("{\"x\": 1}").find("phy2log"), std::string::npos);
  EXPECT_NE(message("{\"phy2log\": [[0,1]]}").find("MoE layers"), std::string::npos);
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t l = cfg.first_k_dense_replace; l < cfg.num_hidden_layers; ++l) rows.push_back(std::vector<int>(16, 3));
  EXPECT_NE(message(nlohmann::json{{"phy2log", rows}}.dump()).find("places no replica of expert 0"), std::string::npos);
  rows.clear();
  for (int64_t l = cfg.first_k_dense_replace; l < cfg.num_hidden_layers; ++l) {
    std::vector<int> r(17);
    std::iota(r.begin(), r.end(), 0);
    r[16] = 0;
    rows.push_back(r);
  }
  EXPECT_NE(message(nlohmann::json{{"phy2log", rows}}.dump()).find("do not split evenly over 2 ranks"), std::string::npos);
  // A plan made for 4 GPUs splits evenly over 2 ranks too, but its balance was planned for 4: refused.
  rows.clear();
  for (int64_t l = cfg.first_k_dense_replace; l < cfg.num_hidden_layers; ++l) {
    std::vector<int> r(20);
    std::iota(r.begin(), r.end(), 0);
    for (int i = 16; i < 20; ++i) r[size_t(i)] = i - 16;
    rows.push_back(r);
  }
  EXPECT_NE(message(nlohmann::json{{"phy2log", rows}, {"gpus", 4}}.dump())
                .find("the plan was made for 4 GPUs (dsinfer eplb --gpus 4) but 2 ranks were started"),
            std::string::npos);
  EXPECT_NE(message(nlohmann::json{{"phy2log", rows}, {"gpus", "4"}}.dump()).find("not a number of GPUs"), std::string::npos);
  EXPECT_EQ(message(nlohmann::json{{"phy2log", rows}, {"gpus", 2}}.dump()), "");  // made for 2: accepted
  EXPECT_EQ(message(nlohmann::json{{"phy2log", rows}}.dump()), "");  // no shape (by hand): accepted
  EXPECT_THROW(ExpertPlacement::contiguous(cfg, 3), Error);  // 16 experts over 3 ranks
}

}  // namespace
}  // namespace dsinfer::parallel
