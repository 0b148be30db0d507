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
    : shard_(comm, std::move(placement), options, cfg.hidden_size),
      calls_{DispatchCall(shard_, 0), DispatchCall(shard_, 1)} {
  check(shard_.placement.num_ranks() == comm.size(), "the expert placement is for ", shard_.placement.num_ranks(),
        " ranks but the group has ", comm.size());
  check(options.low_latency_tokens >= 0, "the low-latency capacity must not be negative");
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l)
    if (shard_.placement.is_moe_layer(int(l))) {
      shard_.first_moe_layer = int(l);
      break;
    }
  shard_.main_layers = int(cfg.num_hidden_layers);
  shard_.layers.resize(size_t(shard_.placement.num_layers()));  // the MTP module's too
  shard_.weight_dtype.assign(size_t(shard_.placement.num_layers()), DType::kBF16);
}

void ExpertParallelMoe::prepare(const model::ModelWeights& weights,
                                const std::function<void(const model::MlpWeights&)>& packed) {
  const ExpertPlacement& P = shard_.placement;
  const int S = P.slots_per_rank(), me = shard_.comm.rank();
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    if (!P.is_moe_layer(int(l)) || !shard_.layers[l].empty()) continue;
    shard_.layers[l].experts.reserve(size_t(S));
    for (int j = 0; j < S; ++j) {
      const int32_t e = P.logical(int(l), me * S + j);
      const model::MlpWeights& w = weights.layers[l].moe.experts[size_t(e)];
      shard_.layers[l].add(model::PackedMlp::pack(w));
      shard_.weight_dtype[l] = w.gate.dtype;
      expert_bytes_ += expert_checkpoint_bytes(w);
      if (packed) packed(w);
    }
  }
}

void ExpertParallelMoe::progress() {
  for (DispatchCall& c : calls_) c.progress();
}

void ExpertParallelMoe::adopt(ExpertPlacement placement, std::vector<model::PackedExperts> layers) {
  check(placement.num_ranks() == shard_.comm.size() && placement.slots_per_rank() == shard_.placement.slots_per_rank(),
        "a new expert placement must keep the group size and the slots per rank");
  check(layers.size() == shard_.layers.size(), "a new expert placement must bring every layer's experts");
  shard_.placement = std::move(placement);
  shard_.layers = std::move(layers);
}

int64_t ExpertParallelMoe::dispatch_row_bytes(int layer) const {
  const kernels::ActQuant act = model::expert_activation_quant(shard_.options.precision, shard_.options.activations,
                                                               shard_.weight_dtype[size_t(layer)]);
  if (act == kernels::ActQuant::kF32) return shard_.hidden * 4;
  if (act == kernels::ActQuant::kBf16) return shard_.hidden * 2;
  return shard_.hidden + kernels::k_blocks(shard_.hidden) * 4;  // e4m3 codes + one fp32 scale per 128
}

int64_t ExpertShard::combine_row_bytes() const {
  return options.precision == model::Precision::kFp32 ? hidden * 4 : hidden * 2;
}

void DispatchCall::begin(const model::MoeInput& in) {
  in_ = in;
  computed_ = false;
  const ExpertParallelOptions& o = s_.options;
  if (in.layer == s_.first_moe_layer || in.layer >= s_.main_layers) {
    // One agreement per step and micro-batch, and per pass of the MTP module (its rows are not
    // the step's): every rank must take the same branch in every layer.
    if (o.mode == DispatchMode::kNormal) {
      low_latency_ = false;
    } else {
      const int64_t most = s_.comm.allreduce_max(in.num_tokens, "agreeing on the dispatch mode");
      const bool fits = o.low_latency_tokens > 0 && most <= o.low_latency_tokens;
      check(fits || o.mode != DispatchMode::kLowLatency, "low-latency dispatch holds ", o.low_latency_tokens,
            " tokens per rank but a rank has ", most);
      low_latency_ = fits;
    }
  }
  check(!s_.layers[size_t(in.layer)].empty(), "ExpertParallelMoe: prepare() was not called before the forward pass");
  act_ = model::expert_activation_quant(o.precision, o.activations, s_.weight_dtype[size_t(in.layer)]);
  kb_ = kernels::k_blocks(s_.hidden);
  row_bytes_ = act_ == kernels::ActQuant::kF32    ? s_.hidden * 4
               : act_ == kernels::ActQuant::kBf16 ? s_.hidden * 2
                                                  : s_.hidden;
  encode_tokens();
  // Every (token, slot) to its physical slot: rank and local index. The replica rule reads the
  // token's index in the step, so a micro-batch split does not change which replica it uses.
  const ExpertPlacement& P = s_.placement;
  const int64_t T = in.num_tokens, K = in.top_k;
  grow(dst_of_, T * K);
  grow(lid_of_, T * K);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const int32_t slot = P.slot_for(in.layer, in.topk_ids[t * K + k], in.first_token + t);
      dst_of_[size_t(t * K + k)] = P.rank_of_slot(slot);
      lid_of_[size_t(t * K + k)] = P.local_of_slot(slot);
    }
  ProfileScope scope(low_latency_ ? "moe.dispatch.low_latency" : "moe.dispatch.normal");
  if (low_latency_) {
    ++s_.stats.low_latency_layers;
    begin_low_latency();
  } else {
    ++s_.stats.normal_layers;
    begin_normal();
  }
}

void DispatchCall::compute() {
  computed_ = true;
  if (low_latency_) compute_low_latency();
  else compute_normal();
}

void DispatchCall::finish(float* out) {
  check(computed_, "ExpertParallelMoe: finish() before compute()");
  wait(combine_, low_latency_ ? "MoE combine (low latency)" : "MoE combine (normal)");
  if (low_latency_) wait(dispatch_, "MoE combine (low latency, sends)");
  sum_in_slot_order(out);
}

void DispatchCall::progress() {
  if (!dispatch_.empty()) s_.comm.test(dispatch_, "MoE dispatch (progress)");
  if (!combine_.empty()) s_.comm.test(combine_, "MoE combine (progress)");
}

void DispatchCall::wait(Exchange& x, const char* what) {
  const double t0 = now_seconds();
  s_.comm.wait(x, what);
  s_.stats.wait_seconds += now_seconds() - t0;
}

void DispatchCall::encode_tokens() {
  const int64_t T = in_.num_tokens;
  grow(enc_, T * row_bytes_);
  grow(enc_scales_, T * kb_);
  switch (act_) {
    case kernels::ActQuant::kF32:
      if (T) std::memcpy(enc_.data(), in_.x, size_t(T * s_.hidden) * sizeof(float));
      break;
    case kernels::ActQuant::kBf16:
      kernels::f32_rows_to_bf16(in_.x, s_.hidden, T, s_.hidden, reinterpret_cast<uint16_t*>(enc_.data()), s_.hidden);
      break;
    case kernels::ActQuant::kFp8:
    case kernels::ActQuant::kFp8Ue8m0:
      kernels::quantize_rows_1x128(in_.x, T, s_.hidden, s_.hidden, act_ == kernels::ActQuant::kFp8Ue8m0, enc_scales_.data(),
                                   enc_.data(), nullptr);
      break;
  }
}

void DispatchCall::decode_rows(const uint8_t* rows, const float* scales, int64_t n, float* a, float* sa) const {
  if (n == 0) return;
  switch (act_) {
    case kernels::ActQuant::kF32:
      std::memcpy(a, rows, size_t(n * s_.hidden) * sizeof(float));
      break;
    case kernels::ActQuant::kBf16:
      kernels::bf16_rows_to_f32(reinterpret_cast<const uint16_t*>(rows), s_.hidden, n, s_.hidden, a, s_.hidden);
      break;
    case kernels::ActQuant::kFp8:
    case kernels::ActQuant::kFp8Ue8m0:
      kernels::e4m3_rows_to_f32(rows, s_.hidden, n, s_.hidden, a, s_.hidden);
      std::memcpy(sa, scales, size_t(n * kb_) * sizeof(float));
      break;
  }
}

void DispatchCall::encode_results(const float* y, int64_t n, uint8_t* out) const {
  if (n == 0) return;
  if (s_.options.precision == model::Precision::kFp32)
    std::memcpy(out, y, size_t(n * s_.hidden) * sizeof(float));
  else  // already rounded to bf16 by GroupedExperts: exact
    kernels::f32_rows_to_bf16(y, s_.hidden, n, s_.hidden, reinterpret_cast<uint16_t*>(out), s_.hidden);
}

void DispatchCall::sum_in_slot_order(float* out) {
  const int64_t T = in_.num_tokens, K = in_.top_k, cb = s_.combine_row_bytes();
  const bool f32 = s_.options.precision == model::Precision::kFp32;
  parallel_rows(size_t(T), size_t(K * s_.hidden), [&](size_t b, size_t e) {
    thread_local std::vector<float> row;
    row.resize(size_t(s_.hidden));
    for (size_t t = b; t < e; ++t)
      for (int64_t k = 0; k < K; ++k) {
        const uint8_t* r = ret_.data() + ret_row_[t * size_t(K) + size_t(k)] * cb;
        const float* values = reinterpret_cast<const float*>(r);
        if (!f32) {
          kernels::bf16_rows_to_f32(reinterpret_cast<const uint16_t*>(r), s_.hidden, 1, s_.hidden, row.data(), s_.hidden);
          values = row.data();
        }
        kernels::axpy(in_.topk_weights[int64_t(t) * K + k], values, out + int64_t(t) * s_.hidden, s_.hidden);
      }
  });
}

}  // namespace dsinfer::parallel
