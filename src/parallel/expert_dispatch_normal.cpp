// ExpertParallelMoe's normal mode (DeepEP's normal dispatch/combine): each token crosses to a rank
// once, as one record: [payload | FP8 scales | top_k local slot ids, -1 where the slot lives
// elsewhere], padded to 8 bytes. Records go in token order to each rank; the receiver expands them
// into one row per local expert, sorted expert-contiguously, and sends each row's result back in
// the order it received them, which the sender already knows how to read (ret_row_).
#include <algorithm>
#include <cstring>

#include "base/profile.h"
#include "base/scratch.h"
#include "base/timer.h"
#include "parallel/expert_parallel_moe.h"

namespace dsinfer::parallel {

void DispatchCall::begin_normal() {
  const int N = s_.comm.size(), me = s_.comm.rank();
  const int64_t T = in_.num_tokens, K = in_.top_k;
  const bool fp8 = act_ == kernels::ActQuant::kFp8 || act_ == kernels::ActQuant::kFp8Ue8m0;
  const int64_t scale_bytes = fp8 ? kb_ * 4 : 0;
  record_bytes_ = (row_bytes_ + scale_bytes + K * 4 + 7) / 8 * 8;

  // Records (tokens) and result rows (slots) per destination.
  send_counts_.assign(size_t(N), 0);
  ret_counts_.assign(size_t(N), 0);
  grow(cursor_, N);  // last token counted per rank, then the fill cursor
  std::fill(cursor_.begin(), cursor_.begin() + N, -1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const int d = dst_of_[size_t(t * K + k)];
      ++ret_counts_[size_t(d)];
      if (cursor_[size_t(d)] != t) cursor_[size_t(d)] = t, ++send_counts_[size_t(d)];
    }
  send_displs_.assign(size_t(N), 0);
  ret_displs_.assign(size_t(N), 0);
  for (int r = 1; r < N; ++r) {
    send_displs_[size_t(r)] = send_displs_[size_t(r - 1)] + send_counts_[size_t(r - 1)];
    ret_displs_[size_t(r)] = ret_displs_[size_t(r - 1)] + ret_counts_[size_t(r - 1)];
  }
  const int64_t records = send_displs_[size_t(N - 1)] + send_counts_[size_t(N - 1)];
  grow(send_records_, records * record_bytes_);
  grow(ret_row_, T * K);
  // Fill: token order within each destination; a result comes back in (token, slot) order.
  next_record_.assign(send_displs_.begin(), send_displs_.end());
  next_ret_.assign(ret_displs_.begin(), ret_displs_.end());
  std::fill(cursor_.begin(), cursor_.begin() + N, -1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const int d = dst_of_[size_t(t * K + k)];
      ret_row_[size_t(t * K + k)] = next_ret_[size_t(d)]++;
      if (cursor_[size_t(d)] == t) continue;
      cursor_[size_t(d)] = t;
      uint8_t* rec = send_records_.data() + next_record_[size_t(d)]++ * record_bytes_;
      std::memcpy(rec, enc_.data() + t * row_bytes_, size_t(row_bytes_));
      if (fp8) std::memcpy(rec + row_bytes_, enc_scales_.data() + t * kb_, size_t(scale_bytes));
      int32_t* lids = reinterpret_cast<int32_t*>(rec + row_bytes_ + scale_bytes);
      for (int64_t j = 0; j < K; ++j) lids[j] = dst_of_[size_t(t * K + j)] == d ? lid_of_[size_t(t * K + j)] : -1;
    }
  // The layout step: every rank learns how many records each other rank sends it.
  recv_counts_.assign(size_t(N), 0);
  recv_displs_.assign(size_t(N), 0);
  const double t0 = now_seconds();
  s_.comm.alltoall(send_counts_.data(), recv_counts_.data(), "MoE dispatch layout (record counts)");
  s_.stats.layout_seconds += now_seconds() - t0;
  for (int r = 1; r < N; ++r) recv_displs_[size_t(r)] = recv_displs_[size_t(r - 1)] + recv_counts_[size_t(r - 1)];
  grow(recv_records_, (recv_displs_[size_t(N - 1)] + recv_counts_[size_t(N - 1)]) * record_bytes_);
  dispatch_.clear();
  s_.comm.ialltoallv(send_records_.data(), send_counts_.data(), send_displs_.data(), recv_records_.data(),
                   recv_counts_.data(), recv_displs_.data(), size_t(record_bytes_), dispatch_);
  for (int r = 0; r < N; ++r)
    if (r != me) {
      s_.stats.dispatch_bytes_sent += uint64_t(send_counts_[size_t(r)]) * uint64_t(record_bytes_);
      s_.stats.tokens_sent += uint64_t(send_counts_[size_t(r)]);
    }
}

void DispatchCall::compute_normal() {
  const int N = s_.comm.size(), me = s_.comm.rank();
  const int64_t K = in_.top_k, J = s_.placement.slots_per_rank(), cb = s_.combine_row_bytes();
  const bool fp8 = act_ == kernels::ActQuant::kFp8 || act_ == kernels::ActQuant::kFp8Ue8m0;
  const int64_t scale_bytes = fp8 ? kb_ * 4 : 0;
  wait(dispatch_, "MoE dispatch (normal)");

  // Rows per local expert, then each (record, slot) its row in the expert-contiguous layout.
  const int64_t R = recv_displs_[size_t(N - 1)] + recv_counts_[size_t(N - 1)];
  auto lids_of = [&](int64_t i) {
    return reinterpret_cast<const int32_t*>(recv_records_.data() + i * record_bytes_ + row_bytes_ + scale_bytes);
  };
  grow(offset_, J + 1);
  std::fill(offset_.begin(), offset_.begin() + J + 1, 0);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t k = 0; k < K; ++k)
      if (lids_of(i)[k] >= 0) ++offset_[size_t(lids_of(i)[k]) + 1];
  for (int64_t j = 0; j < J; ++j) offset_[size_t(j + 1)] += offset_[size_t(j)];
  const int64_t rows = offset_[size_t(J)];
  grow(cursor_, J);
  std::copy(offset_.begin(), offset_.begin() + J, cursor_.begin());
  grow(row_of_recv_slot_, R * K);
  grow(a_, rows * s_.hidden);
  grow(sa_, rows * kb_);
  grow(group_, rows);
  for (int64_t i = 0; i < R; ++i) {
    const uint8_t* rec = recv_records_.data() + i * record_bytes_;
    const float* scales = reinterpret_cast<const float*>(rec + row_bytes_);
    for (int64_t k = 0; k < K; ++k) {
      const int32_t lid = lids_of(i)[k];
      if (lid < 0) {
        row_of_recv_slot_[size_t(i * K + k)] = -1;
        continue;
      }
      const int64_t row = cursor_[size_t(lid)]++;
      row_of_recv_slot_[size_t(i * K + k)] = row;
      group_[size_t(row)] = lid;
      decode_rows(rec, scales, 1, a_.data() + row * s_.hidden, sa_.data() + row * kb_);
    }
  }
  s_.stats.expert_rows += uint64_t(rows);
  grow(y_, rows * s_.hidden);
  if (rows > 0) s_.experts.contiguous(s_.layers[size_t(in_.layer)], a_.data(), fp8 ? sa_.data() : nullptr, rows,
                                    group_.data(), act_, y_.data());

  // Results back in the order they came: per source, records in order, slots in order.
  back_counts_.assign(size_t(N), 0);
  back_displs_.assign(size_t(N), 0);
  grow(back_, rows * cb);
  int64_t b = 0;
  for (int r = 0; r < N; ++r) {
    back_displs_[size_t(r)] = int(b);
    for (int64_t i = recv_displs_[size_t(r)]; i < recv_displs_[size_t(r)] + recv_counts_[size_t(r)]; ++i)
      for (int64_t k = 0; k < K; ++k) {
        const int64_t row = row_of_recv_slot_[size_t(i * K + k)];
        if (row < 0) continue;
        encode_results(y_.data() + row * s_.hidden, 1, back_.data() + b * cb);
        ++b;
      }
    back_counts_[size_t(r)] = int(b) - back_displs_[size_t(r)];
  }
  const int64_t T = in_.num_tokens;
  grow(ret_, T * K * cb);
  combine_.clear();
  s_.comm.ialltoallv(back_.data(), back_counts_.data(), back_displs_.data(), ret_.data(), ret_counts_.data(),
                   ret_displs_.data(), size_t(cb), combine_);
  for (int r = 0; r < N; ++r)
    if (r != me) s_.stats.combine_bytes_sent += uint64_t(back_counts_[size_t(r)]) * uint64_t(cb);
}

}  // namespace dsinfer::parallel
