// Performance simulator of one prefill deployment unit and one decode deployment unit of a
// DeepSeek-V2/V3-architecture model, DeepSeek's way: DP attention on every GPU, routed experts
// spread over the whole unit by expert parallelism (plus redundant copies), DeepEP normal
// kernels and a two-micro-batch overlap in prefill, low-latency kernels and a five-stage
// two-micro-batch pipeline in decode. Per-block costs come from CostModel and comm_model; one
// forward step of one GPU (the slowest, see load_balance.h) is run through the discrete-event
// pipeline simulation; throughput follows. docs/simulator.md lists every assumption.
//
// The defaults of the option structs are DeepSeek's production layouts and its published day
// (56.3% cache hits, mean KV length 4,989, 20 tokens/s per request) — one place for defaults.
#pragma once

#include <string>
#include <vector>

#include "model/config.h"
#include "plan/hardware.h"

namespace dsinfer::plan {

struct PrefillOptions {
  int nodes = 4;                    // the unit: EP = DP = nodes x GPUs per node
  int redundant_experts = 32;       // extra expert copies placed by EPLB
  double tokens_per_gpu = 16384;    // computed (cache-miss) tokens per GPU per forward step
  double mean_prompt_tokens = 4383; // mean input length, cache hits included
  double cache_hit_rate = 0.563;    // share of input tokens whose KV comes from the context cache
  double length_cv = 1.0;           // coefficient of variation of prompt lengths
  double expert_imbalance = 1.40;   // systematic slowest-GPU / mean expert load left by EPLB
  int micro_batches = 2;            // 2: overlap communication with the other micro-batch
  bool mtp = true;                  // run the MTP module too (when the model has one)
};

struct DecodeOptions {
  int nodes = 18;
  int redundant_experts = 32;
  double mean_kv_tokens = 4989;       // mean KV length per decoded token
  double target_tokens_per_s = 20;    // per-request decode speed the batch is sized for
  double batch_per_gpu = 0;           // requests per GPU; 0 = largest meeting the target
  double mtp_acceptance = 0.85;       // acceptance of the one MTP draft token; 0 = no MTP
  double length_cv = 1.0;             // coefficient of variation of KV lengths
  double expert_imbalance = 1.40;
  int micro_batches = 2;
  double memory_utilization = 0.90;   // share of HBM usable for weights, workspace and KV
  double workspace_gb = 5;            // activations, DeepEP buffers, CUDA graphs
};

struct TimeShare {
  std::string name;
  std::string lane;       // "compute" or "network"
  double seconds = 0;     // busy time per step on that lane
};

struct PhaseResult {
  std::string phase;  // "prefill" or "decode"
  std::string hardware;
  int nodes = 0, gpus = 0, gpus_per_node = 0;
  double local_experts = 0;        // routed expert copies per GPU
  double step_seconds = 0;
  double tokens_per_s_per_gpu = 0; // prefill: input tokens incl. cache hits; decode: output tokens
  double tokens_per_s_per_node = 0;
  double computed_tokens_per_s_per_gpu = 0;  // prefill: cache-miss tokens; decode: output tokens
  double compute_busy = 0, network_busy = 0;
  double exposed_wait = 0;         // compute lane idle within the step (waiting on the network)
  std::vector<TimeShare> breakdown;
  double model_flops_per_s_per_gpu = 0;
  double mfu = 0;                  // of dense FP8 (or BF16) peak
  double expert_imbalance = 1;     // applied: systematic x statistical
  double attention_straggler = 1;
  double weight_gb_per_gpu = 0;
  bool mtp = false;
  double usd_per_million_tokens = 0;  // at gpu_hour_usd, filled by the caller
  // prefill
  double mean_context = 0;         // keys per computed query
  double nodes_per_token = 0;      // dispatch fan-out
  // decode
  double batch_per_gpu = 0;
  double max_batch_by_memory = 0;
  double per_request_tokens_per_s = 0;
  double tokens_per_step_per_request = 1;
  bool meets_target = true;
  double kv_gb_per_gpu = 0;
};

struct DecodeCurvePoint {
  double batch_per_gpu = 0;
  double per_request_tokens_per_s = 0;
  double tokens_per_s_per_node = 0;
};

// Throw dsinfer::Error naming the option on impossible input (model does not fit, no MoE, ...).
PhaseResult simulate_prefill(const model::ModelConfig& model, const HardwareCatalog& catalog,
                             const HardwareProfile& hw, const PrefillOptions& opt);
PhaseResult simulate_decode(const model::ModelConfig& model, const HardwareCatalog& catalog,
                            const HardwareProfile& hw, const DecodeOptions& opt);
// Throughput against per-request speed over batch sizes up to the memory limit.
std::vector<DecodeCurvePoint> decode_curve(const model::ModelConfig& model, const HardwareCatalog& catalog,
                                           const HardwareProfile& hw, const DecodeOptions& opt);

// Checks shared by both phases; exposed for tests.
void validate(const PrefillOptions& opt);
void validate(const DecodeOptions& opt);

}  // namespace dsinfer::plan
