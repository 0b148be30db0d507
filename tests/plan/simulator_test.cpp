// The simulator against published measurements it was not fitted to (docs/simulator.md,
// "Validation"), its one calibration point, and its behaviour and errors.
#include "plan/simulator.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "model/config.h"
#include "plan/hardware.h"

namespace dsinfer::plan {
namespace {

const std::string kV3 = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v3.json";
const std::string kV2Lite = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v2-lite.json";
const std::string kHardware = std::string(DSINFER_SOURCE_DIR) + "/data/hardware.json";

struct Sim : testing::Test {
  model::ModelConfig v3 = model::load_config(kV3);
  HardwareCatalog catalog = load_hardware(kHardware);
  const HardwareProfile& h800 = catalog.profile("H800");
  const HardwareProfile& h100 = catalog.profile("H100");
};

void expect_within(double got, double published, double tolerance, const char* what) {
  EXPECT_GE(got, published * (1 - tolerance)) << what;
  EXPECT_LE(got, published * (1 + tolerance)) << what;
}

template <typename Fn>
void expect_error(Fn fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "no error, expected one mentioning " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// Calibration, not validation: end_to_end in data/hardware.json is set from this one run of
// DeepSeek's own profile (EP32, 4K prompts, 16K tokens per GPU, perfectly balanced routing):
// 62,713 input tokens/s per node.
TEST_F(Sim, CalibrationPointDeepSeekPrefillProfile) {
  PrefillOptions o;
  o.mean_prompt_tokens = 4096;
  o.cache_hit_rate = 0;
  o.length_cv = 0;
  o.expert_imbalance = 1.0;
  o.mtp = false;
  expect_within(simulate_prefill(v3, catalog, h800, o).tokens_per_s_per_node, 62713, 0.05, "DeepSeek prefill profile");
}

// Validation 1: DeepSeek's production day, prefill: 73.7k input tokens/s per H800 node with
// 56.3% cache hits (the defaults are that day).
TEST_F(Sim, DeepSeekProductionPrefill) {
  PhaseResult r = simulate_prefill(v3, catalog, h800, PrefillOptions{});
  expect_within(r.tokens_per_s_per_node, 73700, 0.25, "DeepSeek production prefill");
  EXPECT_EQ(r.gpus, 32);
  EXPECT_DOUBLE_EQ(r.local_experts, 9);  // (256 + 32) / 32, as DeepSeek describes
  EXPECT_TRUE(r.mtp);
}

// Validation 2: DeepSeek's production day, decode: 14.8k output tokens/s per node at average KV
// length 4,989 and 20-22 tokens/s per request.
TEST_F(Sim, DeepSeekProductionDecode) {
  PhaseResult r = simulate_decode(v3, catalog, h800, DecodeOptions{});
  expect_within(r.tokens_per_s_per_node, 14800, 0.25, "DeepSeek production decode");
  EXPECT_GE(r.per_request_tokens_per_s, 20);
  EXPECT_LE(r.per_request_tokens_per_s, 22);
  EXPECT_TRUE(r.meets_target);
  EXPECT_DOUBLE_EQ(r.local_experts, 2);  // (256 + 32) / 144
  // 14.8k / 8 GPUs at 20-22 tokens/s means 84-93 requests per GPU; the KV cache must hold them.
  EXPECT_GE(r.max_batch_by_memory, 84);
}

// Validation 3: SGLang on 96 H100s, prefill: about 52.3k input tokens/s per node with
// 2,000-token inputs (4 nodes, EP32, 16,384 tokens per GPU, no MTP, no cache hits).
TEST_F(Sim, SglangPrefillOnH100) {
  PrefillOptions o;
  o.mean_prompt_tokens = 2000;
  o.cache_hit_rate = 0;
  o.length_cv = 0;
  o.mtp = false;
  expect_within(simulate_prefill(v3, catalog, h100, o).tokens_per_s_per_node, 52300, 0.25, "SGLang prefill");
}

// Validation 4: SGLang on 96 H100s, decode: about 22.3k output tokens/s per node (9 nodes, EP72,
// 256 requests per GPU, KV length 2,000, no MTP).
TEST_F(Sim, SglangDecodeOnH100) {
  DecodeOptions o;
  o.nodes = 9;
  o.batch_per_gpu = 256;
  o.mean_kv_tokens = 2000;
  o.length_cv = 0;
  o.mtp_acceptance = 0;
  PhaseResult r = simulate_decode(v3, catalog, h100, o);
  expect_within(r.tokens_per_s_per_node, 22300, 0.25, "SGLang decode");
  EXPECT_DOUBLE_EQ(r.local_experts, 4);
  EXPECT_FALSE(r.mtp);
}

TEST_F(Sim, OverlapAndCacheHitsHelp) {
  PrefillOptions o;
  PhaseResult two = simulate_prefill(v3, catalog, h800, o);
  o.micro_batches = 1;
  PhaseResult one = simulate_prefill(v3, catalog, h800, o);
  EXPECT_GT(two.tokens_per_s_per_node, one.tokens_per_s_per_node);
  EXPECT_NEAR(one.exposed_wait + one.compute_busy, one.step_seconds, 1e-9);
  EXPECT_GT(one.exposed_wait, two.exposed_wait);  // without overlap the network shows
  PrefillOptions cold;
  cold.cache_hit_rate = 0;
  EXPECT_GT(two.tokens_per_s_per_node, simulate_prefill(v3, catalog, h800, cold).tokens_per_s_per_node);
}

TEST_F(Sim, BreakdownAddsUp) {
  PhaseResult r = simulate_decode(v3, catalog, h800, DecodeOptions{});
  double compute = 0, network = 0;
  for (const auto& b : r.breakdown) (b.lane == "compute" ? compute : network) += b.seconds;
  EXPECT_NEAR(compute, r.compute_busy, 1e-12);
  EXPECT_NEAR(network, r.network_busy, 1e-12);
  EXPECT_LE(r.compute_busy, r.step_seconds + 1e-12);
  EXPECT_GT(r.mfu, 0);
  EXPECT_LT(r.mfu, 1);
}

TEST_F(Sim, DecodeCurveTradesSpeedForThroughput) {
  std::vector<DecodeCurvePoint> curve = decode_curve(v3, catalog, h800, DecodeOptions{});
  ASSERT_GE(curve.size(), 5u);
  EXPECT_DOUBLE_EQ(curve.front().batch_per_gpu, 1);
  for (size_t i = 1; i < curve.size(); ++i) {
    EXPECT_GT(curve[i].batch_per_gpu, curve[i - 1].batch_per_gpu);
    EXPECT_GT(curve[i].tokens_per_s_per_node, curve[i - 1].tokens_per_s_per_node);
    // Below a handful of requests per GPU the slowest GPU's share of the experts (Poisson
    // noise over 144 GPUs) shrinks faster than the work grows; past that, speed only falls.
    if (curve[i - 1].batch_per_gpu >= 5) {
      EXPECT_LT(curve[i].per_request_tokens_per_s, curve[i - 1].per_request_tokens_per_s) << curve[i].batch_per_gpu;
    }
  }
}

TEST_F(Sim, FasterHardwareIsFaster) {
  DecodeOptions d;
  double h800_d = simulate_decode(v3, catalog, h800, d).tokens_per_s_per_node;
  double h200_d = simulate_decode(v3, catalog, catalog.profile("H200"), d).tokens_per_s_per_node;
  double b200_d = simulate_decode(v3, catalog, catalog.profile("B200"), d).tokens_per_s_per_node;
  EXPECT_GT(h200_d, h800_d);
  EXPECT_GT(b200_d, h200_d);
  PrefillOptions p;
  EXPECT_GT(simulate_prefill(v3, catalog, catalog.profile("B200"), p).tokens_per_s_per_node,
            simulate_prefill(v3, catalog, h800, p).tokens_per_s_per_node);
}

TEST_F(Sim, SmallerBf16ModelRuns) {
  model::ModelConfig lite = model::load_config(kV2Lite);
  PrefillOptions p;
  p.nodes = 1;
  p.redundant_experts = 0;
  PhaseResult pr = simulate_prefill(lite, catalog, h100, p);
  EXPECT_FALSE(pr.mtp);  // V2-Lite has no MTP module
  EXPECT_DOUBLE_EQ(pr.local_experts, 8);
  DecodeOptions d;
  d.nodes = 1;
  d.redundant_experts = 0;
  PhaseResult dr = simulate_decode(lite, catalog, h100, d);
  EXPECT_GT(dr.tokens_per_s_per_node, simulate_decode(v3, catalog, h100, DecodeOptions{}).tokens_per_s_per_node);
}

TEST_F(Sim, ErrorsNameTheOption) {
  PrefillOptions p;
  p.nodes = 1;  // 671B parameters do not fit on 8 x 80 GB
  expect_error([&] { simulate_prefill(v3, catalog, h800, p); }, "--prefill-nodes");
  DecodeOptions d;
  d.nodes = 40;  // 320 GPUs, 288 expert copies
  expect_error([&] { simulate_decode(v3, catalog, h800, d); }, "--decode-nodes");
  d = DecodeOptions{};
  d.batch_per_gpu = 1000;
  expect_error([&] { simulate_decode(v3, catalog, h800, d); }, "--decode-batch");
  d = DecodeOptions{};
  d.mean_kv_tokens = 2e6;  // one request's cache exceeds the free memory
  expect_error([&] { simulate_decode(v3, catalog, h800, d); }, "--kv-len");

  auto bad_prefill = [&](auto edit, const char* flag) {
    PrefillOptions o;
    edit(o);
    expect_error([&] { validate(o); }, flag);
  };
  bad_prefill([](PrefillOptions& o) { o.cache_hit_rate = 1; }, "--cache-hit");
  bad_prefill([](PrefillOptions& o) { o.cache_hit_rate = -0.1; }, "--cache-hit");
  bad_prefill([](PrefillOptions& o) { o.mean_prompt_tokens = 0; }, "--prompt-len");
  bad_prefill([](PrefillOptions& o) { o.tokens_per_gpu = 0; }, "--prefill-tokens-per-gpu");
  bad_prefill([](PrefillOptions& o) { o.expert_imbalance = 0.9; }, "--expert-imbalance");
  bad_prefill([](PrefillOptions& o) { o.micro_batches = 3; }, "--micro-batches");
  bad_prefill([](PrefillOptions& o) { o.length_cv = -1; }, "--length-cv");
  bad_prefill([](PrefillOptions& o) { o.redundant_experts = -1; }, "--redundant-experts");
  bad_prefill([](PrefillOptions& o) { o.nodes = 0; }, "--prefill-nodes");
  auto bad_decode = [&](auto edit, const char* flag) {
    DecodeOptions o;
    edit(o);
    expect_error([&] { validate(o); }, flag);
  };
  bad_decode([](DecodeOptions& o) { o.target_tokens_per_s = 0; }, "--target-tps");
  bad_decode([](DecodeOptions& o) { o.mtp_acceptance = 1; }, "--mtp-accept");
  bad_decode([](DecodeOptions& o) { o.mean_kv_tokens = 0; }, "--kv-len");
  bad_decode([](DecodeOptions& o) { o.batch_per_gpu = -1; }, "--decode-batch");
  bad_decode([](DecodeOptions& o) { o.memory_utilization = 1.5; }, "--mem-util");
  bad_decode([](DecodeOptions& o) { o.workspace_gb = -1; }, "--workspace-gb");
  bad_decode([](DecodeOptions& o) { o.nodes = 0; }, "--decode-nodes");
}

TEST_F(Sim, TargetOutOfReachIsReported) {
  DecodeOptions d;
  d.target_tokens_per_s = 10000;
  PhaseResult r = simulate_decode(v3, catalog, h800, d);
  EXPECT_FALSE(r.meets_target);
  EXPECT_DOUBLE_EQ(r.batch_per_gpu, 1);
}

}  // namespace
}  // namespace dsinfer::plan
