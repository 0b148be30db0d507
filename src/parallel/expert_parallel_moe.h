// ExpertParallelMoe: DeepEP's dispatch and combine over MPI, as a model::MoeExecutor. Every rank
// runs attention, the dense layers and the shared experts on its own tokens (DP attention) and
// holds only its slots of routed experts (ExpertPlacement). In each MoE layer:
//
//   begin   route every (token, expert) to the rank holding the expert; send the tokens
//   (the layer computes the shared experts meanwhile)
//   finish  receive the tokens sent here, run this rank's experts on them (GroupedExperts),
//           send each (token, expert) result back, and add them up at the token's rank
//
// Two modes, as DeepEP has them (docs/parallel.md has the message sizes):
// - normal (prefill, throughput): a token crosses to a rank once however many of its experts
//   live there, with the list of those experts; the receiver sorts the rows expert-contiguously
//   for the contiguous grouped GEMM. Record counts are exchanged first (MPI_Ialltoall), then the
//   payload (MPI_Ialltoallv).
// - low latency (decode): no count exchange; each rank receives straight into fixed-capacity
//   buffers, one region per (local expert, source rank) of `low_latency_tokens` rows, and the
//   masked grouped GEMM runs on them as they lie; the message length is the receive count.
// A step uses low latency when no rank has more tokens than that capacity (agreed once per step,
// at the first MoE layer); every rank takes the same branch.
//
// Payload: the token as the experts' GEMM reads it — bf16, or e4m3 codes with 1x128 scales
// (FP8 dispatch), or fp32 at verification precision — quantised exactly as LocalMoe quantises.
// Combine sends back each (token, expert) row (bf16 at serving precision), not a per-rank partial
// sum, and the token's rank adds them in top-k slot order with the top-k weights: so the result
// is bit-identical to one process for any number of ranks. The price is combine bytes: top_k rows
// per token instead of one per rank touched (docs/parallel.md).
//
// Two calls may be in flight, one per micro-batch (DispatchCall each): the model's overlap posts
// one micro-batch's dispatch, computes the other's attention, and so on (model/micro_batches.h).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/forward_options.h"
#include "model/grouped_experts.h"
#include "model/moe_executor.h"
#include "parallel/communicator.h"
#include "parallel/expert_placement.h"

namespace dsinfer::parallel {

enum class DispatchMode { kAuto, kNormal, kLowLatency };

struct ExpertParallelOptions {
  model::Precision precision = model::Precision::kDefault;
  model::ExpertActivations activations = model::ExpertActivations::kBf16;
  DispatchMode mode = DispatchMode::kAuto;
  // DeepEP's num_max_dispatch_tokens_per_rank: the capacity of each low-latency receive region.
  int64_t low_latency_tokens = 128;
};

// What crossed the wire, for /metrics and the benchmark.
struct DispatchStats {
  uint64_t normal_layers = 0, low_latency_layers = 0;
  uint64_t dispatch_bytes_sent = 0, combine_bytes_sent = 0;  // to other ranks (self excluded)
  uint64_t tokens_sent = 0;                                   // token copies to other ranks
  uint64_t expert_rows = 0;       // (token, expert) rows this rank's experts computed
  double wait_seconds = 0;        // blocked in dispatch/combine waits (communication exposed)
  double layout_seconds = 0;      // normal mode's count all-to-all, which blocks
};

// What every call of a rank shares: the group, the placement, this rank's packed experts.
struct ExpertShard {
  ExpertShard(Communicator& c, ExpertPlacement p, const ExpertParallelOptions& o, int64_t h)
      : comm(c), placement(std::move(p)), options(o), hidden(h) {}
  Communicator& comm;
  ExpertPlacement placement;
  ExpertParallelOptions options;
  int64_t hidden = 0;
  int first_moe_layer = -1;
  int main_layers = 0;  // model layers from here on are the MTP module's
  std::vector<model::PackedExperts> layers;  // this rank's slots, per model layer
  std::vector<DType> weight_dtype;           // per model layer
  model::GroupedExperts experts;             // GEMM scratch (one call computes at a time)
  DispatchStats stats;

  int64_t combine_row_bytes() const;
};

// One dispatch + combine in flight (one micro-batch's MoE layer): its routing, its buffers, its
// requests. The low-latency mode's tags carry the micro-batch, so two calls never match each
// other's messages; normal mode's collectives are matched in the order every rank posts them.
class DispatchCall {
 public:
  DispatchCall(ExpertShard& shard, int micro_batch) : s_(shard), mb_(micro_batch) {}
  void begin(const model::MoeInput& in);
  void compute();
  void finish(float* out);
  void progress();

 private:
  ExpertShard& s_;
  int mb_;
  model::MoeInput in_;
  bool low_latency_ = false, computed_ = false;
  kernels::ActQuant act_ = kernels::ActQuant::kBf16;
  int64_t row_bytes_ = 0;  // payload of one token (codes, bf16 or fp32; FP8 scales apart)
  int64_t kb_ = 0;         // FP8 scale blocks per row
  Exchange dispatch_, combine_;

  // Shared by both modes: the tokens encoded once, and where each (token, slot) result returns.
  std::vector<uint8_t> enc_;         // [T, row_bytes]
  std::vector<float> enc_scales_;    // [T, kb]
  std::vector<int32_t> dst_of_, lid_of_;  // [T*K] rank and local slot of each (token, slot)
  std::vector<int64_t> ret_row_;     // [T*K] row of the combine receive buffer
  std::vector<uint8_t> ret_;         // combine receive buffer [T*K, combine_row_bytes]
  std::vector<uint8_t> back_;        // combine send buffer
  std::vector<float> a_, sa_, y_;    // expert input rows, their scales, expert outputs
  std::vector<int32_t> group_;

  // Normal mode.
  std::vector<uint8_t> send_records_, recv_records_;
  std::vector<int> send_counts_, send_displs_, recv_counts_, recv_displs_;      // records
  std::vector<int> back_counts_, back_displs_, ret_counts_, ret_displs_;        // combine rows
  std::vector<int> next_record_, next_ret_;  // fill cursors per destination (records, result rows)
  std::vector<int64_t> row_of_recv_slot_, offset_, cursor_;
  int64_t record_bytes_ = 0;
  void begin_normal();
  void compute_normal();

  // Low-latency mode.
  std::vector<uint8_t> ll_send_;        // rows grouped by (dst rank, local slot), tokens ascending
  std::vector<float> ll_send_scales_;
  std::vector<int64_t> ll_count_, ll_offset_;  // [N * J] rows sent to each (rank, slot)
  std::vector<uint8_t> ll_recv_;        // [J, N, cap, row_bytes]
  std::vector<float> ll_recv_scales_;   // [J, N, cap, kb]
  std::vector<int32_t> ll_recv_count_, ll_expert_of_;  // [J * N]
  std::vector<int32_t> ll_request_group_;              // dispatch_ request -> receive region (-1: scales)
  void begin_low_latency();
  void compute_low_latency();
  // Tag of local expert j's rows (kind 0), FP8 scales (1) or results (2) for this micro-batch.
  int tag(int64_t j, int kind) const { return int((j * 3 + kind) * model::MoeExecutor::kMaxMicroBatches + mb_); }

  void wait(Exchange& x, const char* what);
  void encode_tokens();
  // Widens n payload rows (and copies their scales) into fp32 GEMM rows.
  void decode_rows(const uint8_t* rows, const float* scales, int64_t n, float* a, float* sa) const;
  void encode_results(const float* y, int64_t n, uint8_t* out) const;
  // out[t] += sum_k w[t,k] * result(t, k), in slot order, from the combine receive buffer.
  void sum_in_slot_order(float* out);
};

class ExpertParallelMoe : public model::MoeExecutor {
 public:
  ExpertParallelMoe(Communicator& comm, ExpertPlacement placement, const model::ModelConfig& cfg,
                    const ExpertParallelOptions& options);

  void prepare(const model::ModelWeights& weights, const std::function<void(const model::MlpWeights&)>& packed) override;
  void begin(const model::MoeInput& in) override { calls_[size_t(in.micro_batch)].begin(in); }
  void compute(int micro_batch) override { calls_[size_t(micro_batch)].compute(); }
  void finish(int micro_batch, float* out) override { calls_[size_t(micro_batch)].finish(out); }
  // Tests the transfers in flight (non-blocking), so MPI moves them on while other work runs.
  void progress() override;

  const ExpertPlacement& placement() const { return shard_.placement; }
  DispatchStats stats() const { return shard_.stats; }
  // Checkpoint bytes of the routed experts this rank holds (what its memory shrank to).
  int64_t expert_bytes() const { return expert_bytes_; }
  // Payload bytes of one token row on the wire for this layer's weights, dispatch and combine.
  int64_t dispatch_row_bytes(int layer) const;
  int64_t combine_row_bytes() const { return shard_.combine_row_bytes(); }

  // This rank's packed experts, per model layer (online EPLB reads and replaces them).
  std::vector<model::PackedExperts>& local_layers() { return shard_.layers; }
  // Adopts a new placement with the experts it puts on this rank (at a step boundary, when no
  // call is in flight): online EPLB's switch.
  void adopt(ExpertPlacement placement, std::vector<model::PackedExperts> layers);

 private:
  ExpertShard shard_;
  DispatchCall calls_[kMaxMicroBatches];
  int64_t expert_bytes_ = 0;
};

}  // namespace dsinfer::parallel
