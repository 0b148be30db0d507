// ExpertLoadRecorder: the runtime's expert-load statistics, the input EPLB rebalances by. The MoE
// layers report every step's routing through the model::RoutingObserver interface; the recorder
// counts tokens per (MoE layer, logical expert), keeps the counts of the last `window_steps`
// finished steps (0 keeps every step of the run) and hands out a snapshot of their sum at any time.
// on_routing is lock-free (relaxed atomic counters), so forward passes on several threads may
// report at once; on_step_end and snapshot take a mutex, so another thread may snapshot or write
// the file while the model runs. Counts of a step still in progress are not in the snapshot.
// write_json writes the `dsinfer eplb --load` format, for `dsinfer generate --dump-expert-load`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/moe_executor.h"
#include "parallel/eplb_load.h"

namespace dsinfer::parallel {

struct ExpertLoadRecorderOptions {
  int first_layer = 0;   // model layer index of the first MoE layer (config first_k_dense_replace)
  int num_layers = 0;    // MoE layers recorded: model layers [first_layer, first_layer + num_layers)
  int num_experts = 0;   // routed (logical) experts per layer
  int window_steps = 0;  // steps kept; 0 = every step since construction or reset()

  // Every MoE layer of `cfg` (first_k_dense_replace onwards), every step.
  static ExpertLoadRecorderOptions for_model(const model::ModelConfig& cfg) {
    ExpertLoadRecorderOptions o;
    o.first_layer = int(cfg.first_k_dense_replace);
    o.num_layers = int(cfg.num_hidden_layers - cfg.first_k_dense_replace);
    o.num_experts = int(cfg.n_routed_experts);
    return o;
  }
};

class ExpertLoadRecorder : public model::RoutingObserver {
 public:
  // Throws Error on non-positive layer or expert counts or a negative window.
  explicit ExpertLoadRecorder(const ExpertLoadRecorderOptions& options);

  // Called by the forward pass; never throws and never allocates. Ids outside [0, num_experts)
  // (e.g. -1 padding) and layers outside the recorded range are counted in ignored() only.
  void on_routing(int layer, const int32_t* topk_ids, int64_t num_tokens, int top_k) override;
  // Closes the current step: its counts enter the window and the oldest step leaves it.
  void on_step_end() override;

  // Sum of the counts over the window: [num_layers][num_experts], row i = model layer first_layer + i.
  ExpertLoad snapshot() const;
  // Finished steps the window currently holds (at most window_steps when that is not 0).
  int64_t steps_in_window() const;
  // Finished steps since construction or reset().
  int64_t total_steps() const;
  // Routed ids that were out of range, since construction or reset().
  int64_t ignored() const { return ignored_.load(std::memory_order_relaxed); }

  // snapshot() in the --load format.
  std::string to_json() const;
  void write_json(const std::string& path) const;

  // Forgets every count (e.g. after a rebalance, to measure the new placement's traffic afresh).
  void reset();

  const ExpertLoadRecorderOptions& options() const { return options_; }

 private:
  size_t cells() const { return size_t(options_.num_layers) * options_.num_experts; }

  ExpertLoadRecorderOptions options_;
  // Counts of the step in progress, added to by on_routing without a lock.
  std::unique_ptr<std::atomic<int64_t>[]> current_;
  std::atomic<int64_t> ignored_{0};

  mutable std::mutex mu_;
  std::vector<int64_t> window_sum_;  // sum over the steps in the window
  std::vector<int32_t> ring_;        // [window_steps][cells]: per-step counts, when windowed
  int64_t ring_next_ = 0;            // ring slot the next finished step goes to
  int64_t in_window_ = 0;
  int64_t total_steps_ = 0;
};

}  // namespace dsinfer::parallel
