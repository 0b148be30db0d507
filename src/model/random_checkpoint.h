// Writes a random checkpoint in exactly the Hugging Face layout and tensor names of DeepSeek's
// checkpoints — BF16, or FP8 the way the official V3 checkpoint is (every linear weight inside
// the layers except the router is e4m3 with a 128x128-block weight_scale_inv; embeddings, norms,
// router, e_score_correction_bias and lm_head stay BF16/F32). Weights are scaled so activations
// stay O(1) and routing and logits are not trivial. Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace dsinfer::model {

// Raised whenever write_random_checkpoint writes different tensors for the same config and seed
// (2: a full MTP module), so checkpoints cached by an older build are not taken for new ones.
inline constexpr int kRandomCheckpointLayout = 2;

struct RandomCheckpointOptions {
  bool fp8 = false;
  uint64_t seed = 0;
  int64_t max_shard_bytes = int64_t(2) << 30;  // larger checkpoints are sharded with an index
  // The last hot_experts experts of every MoE layer get +1 on their routing bias
  // (e_score_correction_bias, V3's selection-only bias), so nearly every token picks them: a
  // skewed expert load for balancer tests and benchmarks (the last ones, because a plan made
  // from an even load replicates the first ones). The outputs stay a function of the weights
  // like any other model's.
  int hot_experts = 0;
};

// Writes config.json and the safetensors files into dir (created if needed). Returns the number
// of weight bytes written.
int64_t write_random_checkpoint(const ModelConfig& cfg, const std::string& dir, const RandomCheckpointOptions& opt);

}  // namespace dsinfer::model
