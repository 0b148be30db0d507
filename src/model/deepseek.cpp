#include "model/deepseek.h"

#include <cstring>

#include "base/error.h"
#include "base/log.h"
#include "base/profile.h"
#include "kernels/gemm.h"
#include "kernels/weight_view.h"
#include "kernels/norm.h"
#include "kernels/vec.h"
#include "model/mlp.h"

namespace dsinfer::model {

std::unique_ptr<DeepSeekModel> DeepSeekModel::load(const std::string& dir, const ModelOptions& options) {
  ModelConfig cfg = load_config(dir + "/config.json");
  return std::make_unique<DeepSeekModel>(std::move(cfg), Checkpoint::open(dir), options);
}

DeepSeekModel::DeepSeekModel(ModelConfig cfg, Checkpoint ckpt, const ModelOptions& options)
    : cfg_(std::move(cfg)),
      ckpt_(std::move(ckpt)),
      weights_(ModelWeights::load(ckpt_, cfg_)),
      options_(options),
      local_moe_(weights_, options.precision) {
  check(!(options_.fp8_kv_cache && options_.precision == Precision::kFp32),
        "the FP8 KV cache is a serving-precision option; --precision fp32 keeps an fp32 cache");
  rope_.dim = cfg_.qk_rope_head_dim;
  rope_.theta = cfg_.rope_theta;
  if (cfg_.yarn) {
    rope_.factor = cfg_.yarn->factor;
    rope_.beta_fast = cfg_.yarn->beta_fast;
    rope_.beta_slow = cfg_.yarn->beta_slow;
    rope_.original_max_position = cfg_.yarn->original_max_position_embeddings;
    rope_.mscale = cfg_.yarn->mscale;
    rope_.mscale_all_dim = cfg_.yarn->mscale_all_dim;
  }
  attention_.reserve(size_t(cfg_.num_hidden_layers));
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    const LayerWeights& lw = weights_.layers[size_t(l)];
    // The layers run one after another and share their scratch (attention.h, AttentionScratch).
    attention_.emplace_back(cfg_, lw.attn, options_.precision, options_.attention_workspace_bytes, attention_scratch_);
    moe_.push_back(lw.is_moe ? std::make_unique<MoeLayer>(cfg_, lw.moe, int(l), options_.precision, scratch_) : nullptr);
    dense_.push_back(lw.is_moe ? PackedMlp{} : PackedMlp::pack(lw.mlp));
  }
  lm_head_ = kernels::pack_matrix(weights_.lm_head);
  if (!options_.executor) local_moe_.prepare();
  if (weights_.skipped_mtp_tensors)
    log_debug("skipping ", weights_.skipped_mtp_tensors, " multi-token-prediction tensors (MTP not used)");
}

void DeepSeekModel::forward(const Batch& batch, const KvCacheView& cache, float* logits) {
  ProfileScope whole("forward");
  const int64_t T = int64_t(batch.tokens.size()), hidden = cfg_.hidden_size, half = cfg_.qk_rope_head_dim / 2;
  check(cache.dtype() == cache_dtype() && cache.spec.dim == cfg_.latent_dim() &&
            cache.spec.rope_dim == cfg_.qk_rope_head_dim && cache.spec.num_layers == cfg_.num_hidden_layers,
        "KV cache layout does not match the model (dtype, latent width or layer count)");
  for (int32_t id : batch.tokens)
    check(id >= 0 && id < cfg_.vocab_size, "token id ", id, " is outside the vocabulary [0, ", cfg_.vocab_size, ")");
  for (const SequenceChunk& s : batch.seqs)
    check(s.cached_tokens + s.num_tokens <= cfg_.max_position_embeddings, "sequence of ",
          s.cached_tokens + s.num_tokens, " tokens exceeds max_position_embeddings ", cfg_.max_position_embeddings);

  x_.resize(size_t(T * hidden));
  h_.resize(size_t(T * hidden));
  branch_.resize(size_t(T * hidden));
  // Token positions and their rope tables, shared by every layer.
  positions_.resize(size_t(T));
  for (const SequenceChunk& s : batch.seqs)
    for (int64_t i = 0; i < s.num_tokens; ++i) positions_[size_t(s.first_token + i)] = int32_t(s.cached_tokens + i);
  cos_.resize(size_t(T * half));
  sin_.resize(size_t(T * half));
  kernels::rope_tables(rope_, positions_.data(), T, cos_.data(), sin_.data());

  for (int64_t t = 0; t < T; ++t) kernels::dequant_row(weights_.embed, batch.tokens[size_t(t)], x_.data() + t * hidden);

  MoeExecutor& executor = options_.executor ? *options_.executor : local_moe_;
  const float eps = float(cfg_.rms_norm_eps);
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    const LayerWeights& lw = weights_.layers[size_t(l)];
    kernels::rmsnorm(x_.data(), T, hidden, hidden, lw.input_norm.data(), eps, h_.data(), hidden);
    {
      ProfileScope scope("attention");
      attention_[size_t(l)].forward(h_.data(), batch, cache.layer(l), cos_.data(), sin_.data(), options_.attention,
                                    branch_.data());
    }
    kernels::axpy(1.0f, branch_.data(), x_.data(), T * hidden);  // the residual

    kernels::rmsnorm(x_.data(), T, hidden, hidden, lw.post_attention_norm.data(), eps, h_.data(), hidden);
    if (moe_[size_t(l)]) {
      ProfileScope scope("moe");
      moe_[size_t(l)]->forward(h_.data(), T, executor, options_.observer, branch_.data());
    } else {
      ProfileScope scope("dense_mlp");
      mlp_forward(dense_[size_t(l)], h_.data(), T, hidden, branch_.data(), hidden, scratch_,
                  activation_quant(options_.precision));
    }
    kernels::axpy(1.0f, branch_.data(), x_.data(), T * hidden);  // the residual
  }
  if (options_.observer) options_.observer->on_step_end();

  ProfileScope head_scope("lm_head");
  const int64_t R = int64_t(batch.logits_rows.size());
  final_.resize(size_t(R * hidden));
  for (int64_t r = 0; r < R; ++r)
    kernels::rmsnorm(x_.data() + batch.logits_rows[size_t(r)] * hidden, 1, hidden, hidden, weights_.final_norm.data(),
                     eps, final_.data() + r * hidden, hidden);
  kernels::linear(final_.data(), R, hidden, lm_head_, logits, cfg_.vocab_size, activation_quant(options_.precision));
}

}  // namespace dsinfer::model
