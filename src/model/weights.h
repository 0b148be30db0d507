// The model's weights as typed views into the memory-mapped checkpoint, grouped the way the
// forward pass uses them. Loading checks every tensor the config implies — presence, dtype and
// shape, and for FP8 its weight_scale_inv grid — before any compute, so a bad checkpoint fails
// at start-up with the tensor named. Large matrices stay in their checkpoint dtype; only the
// small vectors (norms, router) are converted to fp32.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/weight_view.h"
#include "model/checkpoint.h"
#include "model/config.h"

namespace dsinfer::model {

using kernels::WeightView;

struct AttentionWeights {
  std::optional<WeightView> q_a;  // [q_lora, hidden] when q_lora_rank is set
  std::vector<float> q_a_norm;
  WeightView q;                   // q_b [heads*qk_head, q_lora] or q_proj [heads*qk_head, hidden]
  WeightView kv_a;                // [kv_lora + rope, hidden]
  std::vector<float> kv_a_norm;   // [kv_lora]
  WeightView kv_b;                // [heads*(nope + v), kv_lora]: per head nope rows (W_UK) then v rows (W_UV)
  WeightView o;                   // [hidden, heads*v]
};

struct MlpWeights {
  WeightView gate, up, down;  // [inter, hidden], [inter, hidden], [hidden, inter]
};

struct MoeWeights {
  std::vector<float> router;  // [n_routed, hidden]
  std::vector<float> bias;    // [n_routed] e_score_correction_bias (noaux_tc), else empty
  std::vector<MlpWeights> experts;
  std::optional<MlpWeights> shared;  // intermediate = moe_intermediate * n_shared
};

struct LayerWeights {
  std::vector<float> input_norm, post_attention_norm;
  AttentionWeights attn;
  bool is_moe = false;
  MlpWeights mlp;  // dense layers
  MoeWeights moe;  // MoE layers
};

// DeepSeek-V3's multi-token-prediction module (the V3 paper, section 2.2), stored as
// model.layers.{num_hidden_layers}: h' = eh_proj([enorm(embed(t_{i+1})); hnorm(h_i)]) with h_i the
// main model's final (normalised) hidden state at i, one decoder block (ModelWeights::layers'
// last entry), shared_head.norm, then the main model's LM head predicts t_{i+2}.
struct MtpWeights {
  std::vector<float> enorm, hnorm, head_norm;
  WeightView eh_proj;  // [hidden, 2 * hidden]: input [enorm(embedding) | hnorm(h)]
};

struct ModelWeights {
  WeightView embed;  // [vocab, hidden]
  // The main model's num_hidden_layers blocks, then the MTP module's block when it is loaded.
  std::vector<LayerWeights> layers;
  std::optional<MtpWeights> mtp;
  std::vector<float> final_norm;
  WeightView lm_head;  // [vocab, hidden]
  int64_t skipped_mtp_tensors = 0;

  // Throws Error naming the first tensor that is missing, mistyped or mis-shaped.
  // with_mtp: also the first MTP module (an error if the checkpoint has none).
  static ModelWeights load(const Checkpoint& ckpt, const ModelConfig& cfg, bool with_mtp = false);

  // Bytes of weights one token reads in a decode step: attention, dense MLPs, shared experts,
  // top_k routed experts per MoE layer, the router, and lm_head (the embedding row is negligible).
  double bytes_per_token(const ModelConfig& cfg) const;
};

}  // namespace dsinfer::model
