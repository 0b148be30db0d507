#include "model/deepseek.h"

#include <cstring>

#include "base/error.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/profile.h"
#include "base/scratch.h"
#include "kernels/gemm.h"
#include "kernels/weight_view.h"
#include "kernels/norm.h"
#include "kernels/vec.h"
#include "model/finite_check.h"
#include "model/mlp.h"

namespace dsinfer::model {

namespace {

// Weights resident once. A matrix is repacked at load (kernels::PackedMatrix) and never read from
// the checkpoint again, yet the mapped pages it was read through would stay in the resident set
// beside the packed copy: peak RSS was ~1.8x the checkpoint. Each matrix's pages (and its FP8
// scale grid's) are given back as soon as it is packed, so the peak is the packed weights plus
// about one matrix. Only packed matrices are released: the embedding (and a lm_head tied to it)
// is read in place by every step. Vectors (norms, router, bias) were converted to fp32 copies
// and are small; their pages are left alone.
void release_packed(Checkpoint& ckpt, const WeightView& w) {
  ckpt.release(w.data, size_t(w.bytes()));
  if (w.scale_inv) ckpt.release(w.scale_inv, size_t(w.scale_bytes()));
}

void release_packed(Checkpoint& ckpt, const MlpWeights& m) {
  release_packed(ckpt, m.gate);
  release_packed(ckpt, m.up);
  release_packed(ckpt, m.down);
}

void release_packed(Checkpoint& ckpt, const AttentionWeights& a) {  // after MlaAttention packed all of it
  if (a.q_a) release_packed(ckpt, *a.q_a);
  release_packed(ckpt, a.q);
  release_packed(ckpt, a.kv_a);
  release_packed(ckpt, a.kv_b);
  release_packed(ckpt, a.o);
}

// NaN/Inf scans, each just before (or right after) the matrix is packed: its pages are faulted
// in for packing anyway, so the scan adds one pass over memory and no I/O.
// Timed as "load.weight_check" under DSINFER_PROFILE=1 (the figure in docs/benchmarks.md).
void scan_finite(const Checkpoint& ckpt, const WeightView& w) {
  ProfileScope scope("load.weight_check");
  check_finite(ckpt, w);
}

void scan_finite(const Checkpoint& ckpt, const MlpWeights& m) {
  scan_finite(ckpt, m.gate);
  scan_finite(ckpt, m.up);
  scan_finite(ckpt, m.down);
}

void scan_finite(const Checkpoint& ckpt, const AttentionWeights& a) {
  if (a.q_a) scan_finite(ckpt, *a.q_a);
  scan_finite(ckpt, a.q);
  scan_finite(ckpt, a.kv_a);
  scan_finite(ckpt, a.kv_b);
  scan_finite(ckpt, a.o);
}

}  // namespace

std::unique_ptr<DeepSeekModel> DeepSeekModel::load(const std::string& dir, const ModelOptions& options) {
  ModelConfig cfg = load_config(dir + "/config.json");
  return std::make_unique<DeepSeekModel>(std::move(cfg), Checkpoint::open(dir), options);
}

DeepSeekModel::DeepSeekModel(ModelConfig cfg, Checkpoint ckpt, const ModelOptions& options)
    : cfg_(std::move(cfg)),
      ckpt_(std::move(ckpt)),
      weights_(ModelWeights::load(ckpt_, cfg_, options.mtp)),
      options_(options),
      local_moe_(weights_, options.precision, options.expert_activations),
      dump_(Dump::from_environment()) {
  check(!(options_.fp8_kv_cache && options_.precision == Precision::kFp32),
        "the FP8 KV cache is a serving-precision option; --precision fp32 keeps an fp32 cache");
  check(!(options_.mtp && options_.micro_batches == 2), "multi-token prediction runs with one micro-batch");
  kernels::RopeParams rope;
  rope.dim = cfg_.qk_rope_head_dim;
  rope.theta = cfg_.rope_theta;
  if (cfg_.yarn) {
    rope.factor = cfg_.yarn->factor;
    rope.beta_fast = cfg_.yarn->beta_fast;
    rope.beta_slow = cfg_.yarn->beta_slow;
    rope.original_max_position = cfg_.yarn->original_max_position_embeddings;
    rope.mscale = cfg_.yarn->mscale;
    rope.mscale_all_dim = cfg_.yarn->mscale_all_dim;
  }
  rope_ = kernels::RopeTables(rope);
  const bool scan = options_.check_weights;
  if (scan) {
    // Read in place by every step, never packed: scanned, then its pages given back, so the
    // scan does not leave the whole table resident (rows fault back in as tokens use them).
    scan_finite(ckpt_, weights_.embed);
    ckpt_.release(weights_.embed.data, size_t(weights_.embed.bytes()));
  }
  // The main model's layers, then the MTP module's block (weights_.layers holds it last).
  const int64_t layers = int64_t(weights_.layers.size());
  attention_.reserve(size_t(layers));
  for (int64_t l = 0; l < layers; ++l) {
    const LayerWeights& lw = weights_.layers[size_t(l)];
    if (scan) scan_finite(ckpt_, lw.attn);
    if (scan && lw.is_moe && lw.moe.shared) scan_finite(ckpt_, *lw.moe.shared);
    if (scan && !lw.is_moe) scan_finite(ckpt_, lw.mlp);
    // The layers run one after another and share their scratch (attention.h, AttentionScratch).
    attention_.emplace_back(cfg_, lw.attn, options_.precision, options_.attention_workspace_bytes, attention_scratch_);
    release_packed(ckpt_, lw.attn);
    moe_.push_back(lw.is_moe ? std::make_unique<MoeLayer>(cfg_, lw.moe, int(l), options_.precision, scratch_) : nullptr);
    if (lw.is_moe && lw.moe.shared) release_packed(ckpt_, *lw.moe.shared);
    dense_.push_back(lw.is_moe ? PackedMlp{} : PackedMlp::pack(lw.mlp));
    if (!lw.is_moe) release_packed(ckpt_, lw.mlp);
  }
  if (weights_.mtp) {
    if (scan) scan_finite(ckpt_, weights_.mtp->eh_proj);
    mtp_proj_ = kernels::pack_matrix(weights_.mtp->eh_proj);
    release_packed(ckpt_, weights_.mtp->eh_proj);
  }
  if (scan && weights_.lm_head.data != weights_.embed.data) scan_finite(ckpt_, weights_.lm_head);
  lm_head_ = kernels::pack_matrix(weights_.lm_head);
  if (weights_.lm_head.data != weights_.embed.data) release_packed(ckpt_, weights_.lm_head);  // tied: read in place
  // The executor packs the routed experts it computes (all of them, or this rank's); the pages of
  // experts another rank computes are never touched, so they never become resident here.
  MoeExecutor& executor = options_.executor ? *options_.executor : local_moe_;
  executor.prepare(weights_, [&](const MlpWeights& e) {
    if (scan) scan_finite(ckpt_, e);  // just packed: its pages are still resident
    release_packed(ckpt_, e);
  });
  log_debug("gave back ", ckpt_.released_bytes() >> 20, " MiB of checkpoint pages after packing");
  if (weights_.skipped_mtp_tensors)
    log_debug("skipping ", weights_.skipped_mtp_tensors, " multi-token-prediction tensors (not used)");
}

uint64_t DeepSeekModel::fingerprint() const {
  // A block's rows hold every cache layer: with the MTP module's, they are another format.
  const uint64_t format[2] = {uint64_t(cache_dtype()) + 1, uint64_t(cache_layers())};
  return fingerprint_bytes(ckpt_.fingerprint(), format, has_mtp() ? sizeof format : sizeof format[0]);
}

void DeepSeekModel::set_micro_batches(int n) {
  check(n == 1 || n == 2, "micro-batches must be 1 or 2, got ", n);
  check(n == 1 || !has_mtp(), "multi-token prediction runs with one micro-batch");
  options_.micro_batches = n;
}

void DeepSeekModel::forward(const Batch& step, const KvCacheView& cache, float* logits) {
  ProfileScope whole("forward");
  check(cache.dtype() == cache_dtype() && cache.spec.dim == cfg_.latent_dim() &&
            cache.spec.rope_dim == cfg_.qk_rope_head_dim && cache.spec.num_layers == cache_layers(),
        "KV cache layout does not match the model (dtype, latent width or layer count)");
  check_token_ids(step);
  // Two micro-batches run the step laid out again (micro-batch 0's sequences first); named
  // intermediates (DSINFER_DUMP) are written in the step's own row order, so dumping runs one.
  const bool two = options_.micro_batches == 2 && !dump_.enabled();
  if (two) split_micro_batches(step, split_);
  const Batch& batch = two ? split_.permuted : step;

  // T new tokens in this step (prefill chunks and decode tokens of every sequence, flattened),
  // D hidden, R rows that want logits, V vocab, dr/2 rope pairs.
  const int64_t T = int64_t(batch.tokens.size()), hidden = cfg_.hidden_size;
  grow(x_, T * hidden);       // x [T, D]: the residual stream
  grow(h_, T * hidden);       // h [T, D]: a normalised copy, the input of a branch
  grow(branch_, T * hidden);  // branch [T, D]: attention's or the FFN's output, added to x
  set_positions(batch);

  for (int64_t t = 0; t < T; ++t) kernels::dequant_row(weights_.embed, batch.tokens[size_t(t)], x_.data() + t * hidden);
  dump_("embed", -1, x_.data(), T, hidden);

  MoeExecutor& executor = options_.executor ? *options_.executor : local_moe_;
  if (two) run_layers_overlapped(cache, executor);
  else run_layers(batch, cache, executor);
  if (options_.observer) options_.observer->on_step_end();

  // logits [R, V] = lm_head(norm(x)) for the R rows asked for
  ProfileScope head_scope("lm_head");
  const float eps = float(cfg_.rms_norm_eps);
  const int64_t R = int64_t(batch.logits_rows.size());
  if (has_mtp()) {
    // The MTP module reads every row's final state (kept [T, D]); the logits rows are copies.
    grow(kept_, T * hidden);
    kernels::rmsnorm(x_.data(), T, hidden, hidden, weights_.final_norm.data(), eps, kept_.data(), hidden);
    head_of_kept(batch, logits);
  } else {
    grow(final_, R * hidden);  // final [R, D]
    for (int64_t r = 0; r < R; ++r)
      kernels::rmsnorm(x_.data() + batch.logits_rows[size_t(r)] * hidden, 1, hidden, hidden,
                       weights_.final_norm.data(), eps, final_.data() + r * hidden, hidden);
    kernels::linear(final_.data(), R, hidden, lm_head_, logits, cfg_.vocab_size, activation_quant(options_.precision));
  }
  dump_("final_norm", -1, final_.data(), R, hidden);
  dump_("logits", -1, logits, R, cfg_.vocab_size);
  dump_.next_step();
}

void DeepSeekModel::check_token_ids(const Batch& batch) const {
  // Requests were validated where they entered (engine/validated_request.h); this guards only
  // the embedding lookup's memory, for callers that build batches by hand.
  for (int32_t id : batch.tokens)
    check(id >= 0 && id < cfg_.vocab_size, "token id ", id, " is outside the vocabulary [0, ", cfg_.vocab_size, ")");
}

void DeepSeekModel::head_of_kept(const Batch& batch, float* logits) {
  const int64_t R = int64_t(batch.logits_rows.size()), D = cfg_.hidden_size;
  grow(final_, R * D);  // final [R, D]: the kept states of the rows that want logits
  for (int64_t r = 0; r < R; ++r)
    std::memcpy(final_.data() + r * D, kept_.data() + batch.logits_rows[size_t(r)] * D, size_t(D) * sizeof(float));
  kernels::linear(final_.data(), R, D, lm_head_, logits, cfg_.vocab_size, activation_quant(options_.precision));
}

void DeepSeekModel::set_positions(const Batch& batch) {
  // Token positions [T] and their rope tables cos, sin [T, dr/2], shared by every layer.
  const int64_t T = int64_t(batch.tokens.size()), half = cfg_.qk_rope_head_dim / 2;
  grow(positions_, T);
  for (const SequenceChunk& s : batch.seqs)
    for (int64_t i = 0; i < s.num_tokens; ++i) positions_[size_t(s.first_token + i)] = int32_t(s.cached_tokens + i);
  grow(cos_, T * half);
  grow(sin_, T * half);
  rope_.fill(positions_.data(), T, cos_.data(), sin_.data());
}

void DeepSeekModel::forward_mtp(const Batch& batch, const int64_t* source_rows, const KvCacheView& cache,
                                float* logits) {
  ProfileScope whole("forward_mtp");
  check(has_mtp(), "forward_mtp: the model was loaded without its MTP module");
  check(cache.spec.num_layers == cache_layers(), "KV cache layout does not match the model (layer count)");
  check_token_ids(batch);
  const MtpWeights& m = *weights_.mtp;
  const int64_t T = int64_t(batch.tokens.size()), D = cfg_.hidden_size, L = cfg_.num_hidden_layers;
  const float eps = float(cfg_.rms_norm_eps);
  const bool dumping = dump_.enabled();
  dump_.set_active(false);  // DSINFER_DUMP names the main model's intermediates
  // in [T, 2D] = [enorm(embed(token)) | hnorm(h)], read before this pass replaces the kept states
  grow(mtp_in_, T * 2 * D);
  grow(x_, T * D);
  grow(h_, T * D);
  grow(branch_, T * D);
  for (int64_t t = 0; t < T; ++t) {
    kernels::dequant_row(weights_.embed, batch.tokens[size_t(t)], x_.data() + t * D);
    kernels::rmsnorm(x_.data() + t * D, 1, D, D, m.enorm.data(), eps, mtp_in_.data() + t * 2 * D, 2 * D);
    kernels::rmsnorm(kept_.data() + source_rows[t] * D, 1, D, D, m.hnorm.data(), eps, mtp_in_.data() + t * 2 * D + D,
                     2 * D);
  }
  // x = eh_proj(in), then the module's decoder block over the MTP layer of the cache
  kernels::linear(mtp_in_.data(), T, 2 * D, mtp_proj_, x_.data(), D, activation_quant(options_.precision));
  set_positions(batch);
  MoeExecutor& executor = options_.executor ? *options_.executor : local_moe_;
  attention_stage(L, batch, 0, cache, 0, executor);
  ffn_stage(L, 0, T, 0, executor, /*shared_first=*/true);
  ffn_finish(L, 0, T, 0, executor);
  // The module's states (shared_head.norm) are kept for a chained pass; logits from the shared head.
  grow(kept_, T * D);
  kernels::rmsnorm(x_.data(), T, D, D, m.head_norm.data(), eps, kept_.data(), D);
  head_of_kept(batch, logits);
  dump_.set_active(dumping);
}

void DeepSeekModel::run_layers(const Batch& batch, const KvCacheView& cache, MoeExecutor& ex) {
  const int64_t T = int64_t(batch.tokens.size());
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    attention_stage(l, batch, 0, cache, 0, ex);
    if (layer_observer_) layer_observer_->on_layer_cached(l);
    ffn_stage(l, 0, T, 0, ex, /*shared_first=*/true);
    ffn_finish(l, 0, T, 0, ex);
  }
}

// The two micro-batches A (0) and B (1), per layer:
//   attention(A)  attention(B)  ffn(A)  ffn(B)
// with each one's finish (combine wait + residual) just before its next attention. So A's dispatch
// travels during attention(B), B's during ffn(A) (A's experts and shared experts), A's combine
// during A's shared experts and ffn(B), and B's combine during B's shared experts and the next
// layer's attention(A). In decode this is DeepSeek's five stages per micro-batch — ATTN-0
// (attention), ATTN-1 (gate and dispatch post), DISPATCH, MLP (experts and shared experts),
// COMBINE — offset by one compute stage; in prefill the same interleaving of ATTN / SHARED / MLP
// against DISPATCH / COMBINE. Transfers move on when the executor is polled: between stages and
// between the shared experts' GEMMs.
void DeepSeekModel::run_layers_overlapped(const KvCacheView& cache, MoeExecutor& ex) {
  const MicroBatchSplit& mb = split_;
  for (int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    for (int m = 0; m < 2; ++m) {
      if (l > 0) ffn_finish(l - 1, mb.first_token[m], mb.num_tokens[m], m, ex);
      attention_stage(l, mb.part[m], mb.first_token[m], cache, m, ex);
      ex.progress();
    }
    if (layer_observer_) layer_observer_->on_layer_cached(l);
    for (int m = 0; m < 2; ++m) {
      ffn_stage(l, mb.first_token[m], mb.num_tokens[m], m, ex, /*shared_first=*/false);
      ex.progress();
    }
  }
  for (int m = 0; m < 2; ++m) ffn_finish(cfg_.num_hidden_layers - 1, mb.first_token[m], mb.num_tokens[m], m, ex);
}

void DeepSeekModel::attention_stage(int64_t l, const Batch& part, int64_t r0, const KvCacheView& cache, int mb,
                                    MoeExecutor& ex) {
  const LayerWeights& lw = weights_.layers[size_t(l)];
  const int64_t n = int64_t(part.tokens.size()), hidden = cfg_.hidden_size, half = cfg_.qk_rope_head_dim / 2;
  const float eps = float(cfg_.rms_norm_eps);
  float* x = x_.data() + r0 * hidden;
  float* h = h_.data() + r0 * hidden;
  float* branch = branch_.data() + r0 * hidden;
  // x += MLA(norm(x))
  kernels::rmsnorm(x, n, hidden, hidden, lw.input_norm.data(), eps, h, hidden);
  dump_("attn_norm", l, h, n, hidden);
  {
    ProfileScope scope("attention");
    attention_[size_t(l)].forward(h, part, cache.layer(l), cos_.data() + r0 * half, sin_.data() + r0 * half,
                                  options_.attention, branch);
  }
  dump_("attn_out", l, branch, n, hidden);
  kernels::axpy(1.0f, branch, x, n * hidden);
  // h = norm(x), the FFN's input; an MoE layer sends it to the experts now.
  kernels::rmsnorm(x, n, hidden, hidden, lw.post_attention_norm.data(), eps, h, hidden);
  dump_("ffn_norm", l, h, n, hidden);
  // The routing observer (EPLB's load statistics) counts the main model's layers.
  if (moe_[size_t(l)])
    moe_[size_t(l)]->route_and_dispatch(h, n, r0, mb, ex, l < cfg_.num_hidden_layers ? options_.observer : nullptr);
}

void DeepSeekModel::ffn_stage(int64_t l, int64_t r0, int64_t n, int mb, MoeExecutor& ex, bool shared_first) {
  const int64_t hidden = cfg_.hidden_size;
  float* h = h_.data() + r0 * hidden;
  float* branch = branch_.data() + r0 * hidden;
  if (!moe_[size_t(l)]) {
    ProfileScope scope("dense_mlp");
    mlp_forward(dense_[size_t(l)], h, n, hidden, branch, hidden, scratch_, activation_quant(options_.precision));
    return;
  }
  if (shared_first) moe_[size_t(l)]->shared(h, n, ex, branch);
  {
    ProfileScope scope("moe.experts");
    ex.compute(mb);
  }
  if (!shared_first) moe_[size_t(l)]->shared(h, n, ex, branch);
}

void DeepSeekModel::ffn_finish(int64_t l, int64_t r0, int64_t n, int mb, MoeExecutor& ex) {
  const int64_t hidden = cfg_.hidden_size;
  float* x = x_.data() + r0 * hidden;
  float* branch = branch_.data() + r0 * hidden;
  if (moe_[size_t(l)]) {
    ProfileScope scope("moe.combine");
    ex.finish(mb, branch);
  }
  dump_("ffn_out", l, branch, n, hidden);
  kernels::axpy(1.0f, branch, x, n * hidden);
  dump_("layer_out", l, x, n, hidden);
}

}  // namespace dsinfer::model
