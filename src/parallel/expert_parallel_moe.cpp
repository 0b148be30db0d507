#include "parallel/expert_parallel_moe.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "base/profile.h"
#include "base/scratch.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "kernels/convert.h"
#include "kernels/vec.h"

namespace dsinfer::parallel {

namespace {

int64_t expert_checkpoint_bytes(const model::MlpWeights& w) {
  int64_t b = 0;
  for (const kernels::WeightView* v : {&w.gate, &w.up, &w.down}) b += v->bytes() + v->scale_bytes();
  return b;
}

}  // namespace

ExpertParallelMoe::ExpertParallelMoe(Communicator& comm, ExpertPlacement placement, const model::ModelConfig& cfg,
                                     const ExpertParallelOptions& options)
    : comm_(comm), placement_(std::move(placement)), options_(options), hidden_(cfg.hidden_size) {
  check(placement_.num_ranks() == comm_.size(), "the expert placement is for ", placement_.num_ranks(),
        " ranks but the group has ", comm_.size());
  check(options_.low_latency_tokens >= 0, "the low-latency capacity must not be negative");
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l)
    if (placement_.is_moe_layer(int(l))) {
      first_moe_layer_ = int(l);
      break;
    }
  layers_.resize(size_t(cfg.num_hidden_layers));
  weight_dtype_.assign(size_t(cfg.num_hidden_layers), DType::kBF16);
}

void ExpertParallelMoe::prepare(const model::ModelWeights& weights,
                                const std::function<void(const model::MlpWeights&)>& packed) {
  const int S = placement_.slots_per_rank();
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    if (!placement_.is_moe_layer(int(l)) || !layers_[l].empty()) continue;
    layers_[l].experts.reserve(size_t(S));
    for (int j = 0; j < S; ++j) {
      const int32_t e = placement_.logical(int(l), comm_.rank() * S + j);
      const model::MlpWeights& w = weights.layers[l].moe.experts[size_t(e)];
      layers_[l].add(model::PackedMlp::pack(w));
      weight_dtype_[l] = w.gate.dtype;
      expert_bytes_ += expert_checkpoint_bytes(w);
      if (packed) packed(w);
    }
  }
}

int64_t ExpertParallelMoe::dispatch_row_bytes(int layer) const {
  const kernels::ActQuant act = model::expert_activation_quant(options_.precision, options_.activations,
                                                               weight_dtype_[size_t(layer)]);
  if (act == kernels::ActQuant::kF32) return hidden_ * 4;
  if (act == kernels::ActQuant::kBf16) return hidden_ * 2;
  return hidden_ + kernels::k_blocks(hidden_) * 4;  // e4m3 codes + one fp32 scale per 128
}

int64_t ExpertParallelMoe::combine_row_bytes() const {
  return options_.precision == model::Precision::kFp32 ? hidden_ * 4 : hidden_ * 2;
}

void ExpertParallelMoe::begin(const model::MoeInput& in) {
  in_ = in;
  if (in.layer == first_moe_layer_) {
    // One agreement per step: every rank must take the same branch in every layer.
    if (options_.mode == DispatchMode::kNormal) {
      low_latency_ = false;
    } else {
      const int64_t most = comm_.allreduce_max(in.num_tokens, "agreeing on the dispatch mode");
      const bool fits = options_.low_latency_tokens > 0 && most <= options_.low_latency_tokens;
      check(fits || options_.mode != DispatchMode::kLowLatency, "low-latency dispatch holds ",
            options_.low_latency_tokens, " tokens per rank but a rank has ", most);
      low_latency_ = fits;
    }
  }
  check(!layers_[size_t(in.layer)].empty(), "ExpertParallelMoe: prepare() was not called before the forward pass");
  act_ = model::expert_activation_quant(options_.precision, options_.activations, weight_dtype_[size_t(in.layer)]);
  kb_ = kernels::k_blocks(hidden_);
  row_bytes_ = act_ == kernels::ActQuant::kF32 ? hidden_ * 4 : act_ == kernels::ActQuant::kBf16 ? hidden_ * 2 : hidden_;
  encode_tokens();
  // Every (token, slot) to its physical slot: rank and local index.
  const int64_t T = in.num_tokens, K = in.top_k;
  grow(dst_of_, T * K);
  grow(lid_of_, T * K);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const int32_t slot = placement_.slot_for(in.layer, in.topk_ids[t * K + k], t);
      dst_of_[size_t(t * K + k)] = placement_.rank_of_slot(slot);
      lid_of_[size_t(t * K + k)] = placement_.local_of_slot(slot);
    }
  ProfileScope scope(low_latency_ ? "moe.dispatch.low_latency" : "moe.dispatch.normal");
  if (low_latency_) {
    ++stats_.low_latency_layers;
    begin_low_latency();
  } else {
    ++stats_.normal_layers;
    begin_normal();
  }
}

void ExpertParallelMoe::finish(float* out) {
  if (low_latency_) finish_low_latency(out);
  else finish_normal(out);
}

void ExpertParallelMoe::encode_tokens() {
  const int64_t T = in_.num_tokens;
  grow(enc_, T * row_bytes_);
  grow(enc_scales_, T * kb_);
  switch (act_) {
    case kernels::ActQuant::kF32:
      if (T) std::memcpy(enc_.data(), in_.x, size_t(T * hidden_) * sizeof(float));
      break;
    case kernels::ActQuant::kBf16:
      kernels::f32_rows_to_bf16(in_.x, hidden_, T, hidden_, reinterpret_cast<uint16_t*>(enc_.data()), hidden_);
      break;
    case kernels::ActQuant::kFp8:
    case kernels::ActQuant::kFp8Ue8m0:
      kernels::quantize_rows_1x128(in_.x, T, hidden_, hidden_, act_ == kernels::ActQuant::kFp8Ue8m0, enc_scales_.data(),
                                   enc_.data(), nullptr);
      break;
  }
}

void ExpertParallelMoe::decode_rows(const uint8_t* rows, const float* scales, int64_t n, float* a, float* sa) const {
  if (n == 0) return;
  switch (act_) {
    case kernels::ActQuant::kF32:
      std::memcpy(a, rows, size_t(n * hidden_) * sizeof(float));
      break;
    case kernels::ActQuant::kBf16:
      kernels::bf16_rows_to_f32(reinterpret_cast<const uint16_t*>(rows), hidden_, n, hidden_, a, hidden_);
      break;
    case kernels::ActQuant::kFp8:
    case kernels::ActQuant::kFp8Ue8m0:
      kernels::e4m3_rows_to_f32(rows, hidden_, n, hidden_, a, hidden_);
      std::memcpy(sa, scales, size_t(n * kb_) * sizeof(float));
      break;
  }
}

void ExpertParallelMoe::encode_results(const float* y, int64_t n, uint8_t* out) const {
  if (n == 0) return;
  if (options_.precision == model::Precision::kFp32)
    std::memcpy(out, y, size_t(n * hidden_) * sizeof(float));
  else  // already rounded to bf16 by GroupedExperts: exact
    kernels::f32_rows_to_bf16(y, hidden_, n, hidden_, reinterpret_cast<uint16_t*>(out), hidden_);
}

void ExpertParallelMoe::sum_in_slot_order(float* out) {
  const int64_t T = in_.num_tokens, K = in_.top_k, cb = combine_row_bytes();
  const bool f32 = options_.precision == model::Precision::kFp32;
  parallel_rows(size_t(T), size_t(K * hidden_), [&](size_t b, size_t e) {
    thread_local std::vector<float> row;
    row.resize(size_t(hidden_));
    for (size_t t = b; t < e; ++t)
      for (int64_t k = 0; k < K; ++k) {
        const uint8_t* r = ret_.data() + ret_row_[t * size_t(K) + size_t(k)] * cb;
        const float* values = reinterpret_cast<const float*>(r);
        if (!f32) {
          kernels::bf16_rows_to_f32(reinterpret_cast<const uint16_t*>(r), hidden_, 1, hidden_, row.data(), hidden_);
          values = row.data();
        }
        kernels::axpy(in_.topk_weights[int64_t(t) * K + k], values, out + int64_t(t) * hidden_, hidden_);
      }
  });
}

}  // namespace dsinfer::parallel
