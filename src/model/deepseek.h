// DeepSeekModel: the DeepSeek-V2/V3 forward pass over a Batch, reading like the papers:
//   x = embed(tokens)
//   for each layer: x += MLA(norm(x)); x += (MoE or MLP)(norm(x))
//   logits = lm_head(norm(x))   for the rows the batch asks for
// The model owns no sequence memory: it reads and writes the latent cache through the batch's
// block tables (DESIGN.md, "Model ⇄ KV cache").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/rope.h"
#include "model/attention.h"
#include "model/batch.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/dump.h"
#include "model/forward_options.h"
#include "model/local_moe.h"
#include "model/micro_batches.h"
#include "model/mlp.h"
#include "model/moe.h"
#include "model/weights.h"

namespace dsinfer::model {

// Told, during a forward, each time a layer's latent KV rows of the whole step are in the cache
// (after that layer's attention, both micro-batches'): a prefill instance sends them on while the
// later layers compute (engine/kv_transfer.h). Must be cheap and must not block.
class LayerObserver {
 public:
  virtual ~LayerObserver() = default;
  virtual void on_layer_cached(int64_t layer) = 0;
};

struct ModelOptions {
  Precision precision = Precision::kDefault;
  // FlashMLA's FP8 latent cache (e4m3 latent with a scale per 128 channels, rope kept bf16):
  // 656 instead of 1,152 bytes a token-layer for V3, so about 1.76x the tokens in the same
  // memory. Serving precision only; kFp32 keeps an fp32 cache for verification.
  bool fp8_kv_cache = false;
  // Bound on the decompressed K/V a prefill chunk holds at once; longer cached contexts are
  // attended in tiles (MlaAttention). Tests shrink it to force tiling.
  int64_t attention_workspace_bytes = MlaAttention::kDefaultAttentionWorkspace;
  AttentionMode attention = AttentionMode::kAuto;
  // The routed experts' input format (forward_options.h): bf16, or DeepEP's FP8 dispatch.
  ExpertActivations expert_activations = ExpertActivations::kBf16;
  // 2: DeepSeek's two-micro-batch overlap (model/micro_batches.h): the step's sequences split
  // in two, one micro-batch's attention and experts computed while the other's dispatch or
  // combine is in flight. Outputs are the same bits either way; it pays only with an
  // expert-parallel executor whose transfers take long enough to hide (docs/parallel.md).
  int micro_batches = 1;
  MoeExecutor* executor = nullptr;      // nullptr: LocalMoe
  RoutingObserver* observer = nullptr;  // told every layer's routing
  // Refuse a checkpoint holding NaN or Inf, naming the tensor (model/finite_check.h). Each
  // matrix is scanned as it is packed, while its pages are resident anyway; docs/benchmarks.md
  // has the cost. Vectors (norms, router, bias) are always checked.
  bool check_weights = true;
  // Load the checkpoint's multi-token-prediction module (model.layers.{num_hidden_layers}) for
  // speculative decoding: forward_mtp() runs it, and the KV cache gets one more layer, its own.
  // One micro-batch only (a draft row reads its sequence's previous rows in the same step).
  bool mtp = false;
};

class DeepSeekModel {
 public:
  // Loads config.json and the checkpoint in `dir`, validating every tensor.
  static std::unique_ptr<DeepSeekModel> load(const std::string& dir, const ModelOptions& options = {});
  DeepSeekModel(ModelConfig cfg, Checkpoint ckpt, const ModelOptions& options);

  // Runs one step. logits: [batch.logits_rows.size(), vocab_size].
  void forward(const Batch& batch, const KvCacheView& cache, float* logits);

  // One pass of the MTP module (options.mtp) over `batch`, after a forward(): row t is
  // MTP(h = the kept state source_rows[t], token = batch.tokens[t]), where token t is the one after
  // the position whose state h is, and batch positions are those of h (the V3 paper: the module at
  // position i reads h_i and the embedding of t_{i+1}, and predicts t_{i+2}). The kept states are
  // forward()'s final normalised hidden states, one per row of its batch, or the previous
  // forward_mtp()'s outputs (the module chained on its own drafts); this pass's outputs replace
  // them. Writes the MTP layer's latent rows of the cache; logits: [batch.logits_rows.size(), V].
  void forward_mtp(const Batch& batch, const int64_t* source_rows, const KvCacheView& cache, float* logits);
  bool has_mtp() const { return weights_.mtp.has_value(); }

  const ModelConfig& config() const { return cfg_; }
  // Identifies the model and the cache format its KV rows are written in (prefix-cache keys of
  // different models or cache dtypes never meet).
  uint64_t fingerprint() const;
  const ModelWeights& weights() const { return weights_; }
  // The latent cache this precision and these options use.
  DType cache_dtype() const {
    if (options_.precision == Precision::kFp32) return DType::kF32;
    return options_.fp8_kv_cache ? DType::kF8E4M3 : DType::kBF16;
  }
  // The main model's layers, then the MTP module's when it is loaded.
  int64_t cache_layers() const { return cfg_.num_hidden_layers + (has_mtp() ? 1 : 0); }
  KvCacheSpec cache_spec() const { return {cache_layers(), cfg_.latent_dim(), cfg_.qk_rope_head_dim, cache_dtype()}; }
  void set_attention_mode(AttentionMode m) { options_.attention = m; }
  void set_micro_batches(int n);
  void set_observer(RoutingObserver* o) { options_.observer = o; }
  void set_layer_observer(LayerObserver* o) { layer_observer_ = o; }
  RoutingObserver* observer() const { return options_.observer; }
  // DSINFER_DUMP on or off (the engine's warm-up steps are not dumped); on by default.
  void set_dumping(bool on) { dump_.set_active(on); }
  // Cached tokens a prefill chunk's non-absorbed attention decompresses at once: past this a
  // longer context is attended in tiles of this size (no larger buffers).
  int64_t attention_context_tile() const { return attention_.empty() ? 0 : attention_[0].context_tile(); }
  // Sizes the buffers a prefill chunk of up to max_tokens needs when its context is longer than
  // one tile (the partial results merged per tile), which a warm-up would otherwise have to
  // reach with a full-sized chunk over a long context.
  void reserve_chunk(int64_t max_tokens) {
    if (!attention_.empty()) attention_[0].reserve_chunk(max_tokens);
  }

 private:
  // One layer's stages on the rows [r0, r0 + part.tokens.size()) of the step (a micro-batch, or
  // the whole step as micro-batch 0):
  //   attention_stage  x += MLA(norm(x)); h = norm(x); MoE layers: the gate and the dispatch
  //   ffn_stage        dense layers: branch = MLP(h); MoE layers: this rank's experts and the
  //                    shared experts into branch, the shared ones first when `shared_first` (the
  //                    dispatch travels meanwhile) or last (the combine does)
  //   ffn_finish       MoE layers: branch += the routed results; x += branch
  void attention_stage(int64_t l, const Batch& part, int64_t r0, const KvCacheView& cache, int mb, MoeExecutor& ex);
  void ffn_stage(int64_t l, int64_t r0, int64_t n, int mb, MoeExecutor& ex, bool shared_first);
  void ffn_finish(int64_t l, int64_t r0, int64_t n, int mb, MoeExecutor& ex);
  // The layers, one micro-batch or two interleaved.
  void run_layers(const Batch& batch, const KvCacheView& cache, MoeExecutor& ex);
  void run_layers_overlapped(const KvCacheView& cache, MoeExecutor& ex);
  // positions_, cos_ and sin_ for the batch's rows.
  void set_positions(const Batch& batch);
  void check_token_ids(const Batch& batch) const;
  // logits = lm_head(kept states of batch.logits_rows): the main model's head with MTP loaded,
  // and the module's shared head.
  void head_of_kept(const Batch& batch, float* logits);

  ModelConfig cfg_;
  Checkpoint ckpt_;
  ModelWeights weights_;
  ModelOptions options_;
  kernels::RopeTables rope_;
  LocalMoe local_moe_;
  AttentionScratch attention_scratch_;  // before attention_, which refers to it
  std::vector<MlaAttention> attention_;
  std::vector<std::unique_ptr<MoeLayer>> moe_;  // null for dense layers
  std::vector<PackedMlp> dense_;               // per layer; empty for MoE layers
  kernels::PackedMatrix lm_head_;
  kernels::PackedMatrix mtp_proj_;  // the MTP module's eh_proj, when loaded
  LayerObserver* layer_observer_ = nullptr;
  Dump dump_;  // DSINFER_DUMP: named intermediates (model/dump.h)
  // Step buffers, grown to the largest step seen (the engine's warm-up) and reused.
  std::vector<float> x_, h_, branch_, cos_, sin_, final_, scratch_;
  // With MTP: the last pass's final normalised states [rows, D] (forward_mtp reads them), and
  // the module's input [T, 2D].
  std::vector<float> kept_, mtp_in_;
  std::vector<int32_t> positions_;
  MicroBatchSplit split_;
};

}  // namespace dsinfer::model
