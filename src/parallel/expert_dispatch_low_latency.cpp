// ExpertParallelMoe's low-latency mode (DeepEP's low-latency dispatch/combine, for decode): no
// layout step. Each rank keeps a receive region of `cap` rows per (local expert j, source rank s)
// — [J, N, cap] rows, the masked grouped GEMM's [G = J * N, m_max = cap] layout as it lies — and
// every source sends, per expert, exactly the rows of its tokens that chose it (a message of zero
// rows says "none"); the message length is the receive count. Results go back per (expert,
// source) into a buffer the token's rank laid out when it sent, so nothing is reshuffled on
// either side. Tags (DispatchCall::tag): rows, FP8 scales and results of local expert j, each per
// micro-batch, so two calls in flight never take each other's messages.
#include <algorithm>
#include <cstring>

#include "base/scratch.h"
#include "base/timer.h"
#include "parallel/expert_parallel_moe.h"

namespace dsinfer::parallel {

void DispatchCall::begin_low_latency() {
  const int N = s_.comm.size(), me = s_.comm.rank();
  const int64_t T = in_.num_tokens, K = in_.top_k, J = s_.placement.slots_per_rank();
  const int64_t cap = s_.options.low_latency_tokens, cb = s_.combine_row_bytes();
  const bool fp8 = act_ == kernels::ActQuant::kFp8 || act_ == kernels::ActQuant::kFp8Ue8m0;

  // Rows per (destination, local expert), laid out in that order, tokens ascending in each.
  ll_count_.assign(size_t(N * J), 0);
  for (int64_t s = 0; s < T * K; ++s) ++ll_count_[size_t(dst_of_[size_t(s)] * J + lid_of_[size_t(s)])];
  ll_offset_.assign(size_t(N * J) + 1, 0);
  for (int64_t g = 0; g < N * J; ++g) ll_offset_[size_t(g + 1)] = ll_offset_[size_t(g)] + ll_count_[size_t(g)];
  grow(ll_send_, T * K * row_bytes_);
  if (fp8) grow(ll_send_scales_, T * K * kb_);
  grow(ret_row_, T * K);
  grow(cursor_, N * J);
  std::copy(ll_offset_.begin(), ll_offset_.begin() + N * J, cursor_.begin());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t g = dst_of_[size_t(t * K + k)] * J + lid_of_[size_t(t * K + k)];
      const int64_t row = cursor_[size_t(g)]++;
      ret_row_[size_t(t * K + k)] = row;  // the result returns to the same position
      std::memcpy(ll_send_.data() + row * row_bytes_, enc_.data() + t * row_bytes_, size_t(row_bytes_));
      if (fp8) std::memcpy(ll_send_scales_.data() + row * kb_, enc_scales_.data() + t * kb_, size_t(kb_) * sizeof(float));
    }

  // Receive regions, sized once for the capacity.
  grow(ll_recv_, J * N * cap * row_bytes_);
  if (fp8) grow(ll_recv_scales_, J * N * cap * kb_);
  ll_recv_count_.assign(size_t(J * N), 0);
  grow(ret_, T * K * cb);
  dispatch_.clear();
  combine_.clear();
  ll_request_group_.clear();
  for (int64_t j = 0; j < J; ++j)
    for (int s = 0; s < N; ++s) {
      if (s == me) continue;
      const int64_t g = j * N + s;
      s_.comm.irecv(ll_recv_.data() + g * cap * row_bytes_, size_t(cap * row_bytes_), s, tag(j, 0), dispatch_);
      ll_request_group_.push_back(int32_t(g));
      if (fp8) {
        s_.comm.irecv(ll_recv_scales_.data() + g * cap * kb_, size_t(cap * kb_) * sizeof(float), s, tag(j, 1),
                    dispatch_);
        ll_request_group_.push_back(-1);
      }
    }
  // The results of what this rank sends: posted now, so they can land as soon as they are ready.
  for (int d = 0; d < N; ++d)
    for (int64_t j = 0; j < J; ++j) {
      const int64_t g = d * J + j, n = ll_count_[size_t(g)];
      if (d == me || n == 0) continue;
      s_.comm.irecv(ret_.data() + ll_offset_[size_t(g)] * cb, size_t(n * cb), d, tag(j, 2), combine_);
    }
  for (int d = 0; d < N; ++d)
    for (int64_t j = 0; j < J; ++j) {
      const int64_t g = d * J + j, n = ll_count_[size_t(g)], first = ll_offset_[size_t(g)];
      if (d == me) {  // this rank's own experts: straight into the region
        const int64_t region = j * N + me;
        ll_recv_count_[size_t(region)] = int32_t(n);
        if (n == 0) continue;  // (and nothing to copy from: the send buffer may be empty)
        std::memcpy(ll_recv_.data() + region * cap * row_bytes_, ll_send_.data() + first * row_bytes_,
                    size_t(n * row_bytes_));
        if (fp8)
          std::memcpy(ll_recv_scales_.data() + region * cap * kb_, ll_send_scales_.data() + first * kb_,
                      size_t(n * kb_) * sizeof(float));
        continue;
      }
      s_.comm.isend(ll_send_.data() + first * row_bytes_, size_t(n * row_bytes_), d, tag(j, 0), dispatch_);
      if (fp8) s_.comm.isend(ll_send_scales_.data() + first * kb_, size_t(n * kb_) * sizeof(float), d, tag(j, 1), dispatch_);
      s_.stats.dispatch_bytes_sent += uint64_t(n * (row_bytes_ + (fp8 ? kb_ * 4 : 0)));
      s_.stats.tokens_sent += uint64_t(n);
    }
}

void DispatchCall::compute_low_latency() {
  const int N = s_.comm.size(), me = s_.comm.rank();
  const int64_t J = s_.placement.slots_per_rank(), G = J * N;
  const int64_t cap = s_.options.low_latency_tokens, cb = s_.combine_row_bytes();
  const bool fp8 = act_ == kernels::ActQuant::kFp8 || act_ == kernels::ActQuant::kFp8Ue8m0;
  wait(dispatch_, "MoE dispatch (low latency)");
  for (size_t i = 0; i < ll_request_group_.size(); ++i)
    if (ll_request_group_[i] >= 0)
      ll_recv_count_[size_t(ll_request_group_[i])] = int32_t(int64_t(s_.comm.received_bytes(dispatch_, i)) / row_bytes_);

  // The regions widened for the GEMM (only their received rows), then the masked grouped GEMM.
  grow(a_, G * cap * s_.hidden);
  if (fp8) grow(sa_, G * cap * kb_);
  ll_expert_of_.resize(size_t(G));
  for (int64_t g = 0; g < G; ++g) {
    ll_expert_of_[size_t(g)] = int32_t(g / N);
    s_.stats.expert_rows += uint64_t(ll_recv_count_[size_t(g)]);
    decode_rows(ll_recv_.data() + g * cap * row_bytes_, fp8 ? ll_recv_scales_.data() + g * cap * kb_ : nullptr,
                ll_recv_count_[size_t(g)], a_.data() + g * cap * s_.hidden, fp8 ? sa_.data() + g * cap * kb_ : nullptr);
  }
  grow(y_, G * cap * s_.hidden);
  s_.experts.masked(s_.layers[size_t(in_.layer)], a_.data(), fp8 ? sa_.data() : nullptr, G, cap, ll_recv_count_.data(),
                  ll_expert_of_.data(), act_, y_.data());

  // Each region's results back to its source (this rank's own straight into place).
  grow(back_, G * cap * cb);
  dispatch_.clear();  // reused for the result sends
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = ll_recv_count_[size_t(g)], j = g / N;
    const int s = int(g % N);
    if (n == 0) continue;
    if (s == me) {
      encode_results(y_.data() + g * cap * s_.hidden, n, ret_.data() + ll_offset_[size_t(me * J + j)] * cb);
      continue;
    }
    uint8_t* rows = back_.data() + g * cap * cb;
    encode_results(y_.data() + g * cap * s_.hidden, n, rows);
    s_.comm.isend(rows, size_t(n * cb), s, tag(j, 2), dispatch_);
    s_.stats.combine_bytes_sent += uint64_t(n * cb);
  }
}

}  // namespace dsinfer::parallel
