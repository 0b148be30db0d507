#include "parallel/expert_load_recorder.h"

#include <algorithm>
#include <limits>

#include "base/error.h"

namespace dsinfer::parallel {

namespace {

// The ring holds window_steps x layers x experts int32 counts; beyond this a window is a mistake.
constexpr size_t kMaxRingCells = size_t(1) << 28;

}  // namespace

ExpertLoadRecorder::ExpertLoadRecorder(const ExpertLoadRecorderOptions& options) : options_(options) {
  check(options.num_layers > 0, "expert load recorder: num_layers must be positive, got ", options.num_layers);
  check(options.num_experts > 0, "expert load recorder: num_experts must be positive, got ", options.num_experts);
  check(options.first_layer >= 0, "expert load recorder: first_layer must be >= 0, got ", options.first_layer);
  check(options.window_steps >= 0, "expert load recorder: window_steps must be >= 0 (0 keeps every step), got ",
        options.window_steps);
  check(size_t(options.window_steps) * cells() <= kMaxRingCells, "expert load recorder: a window of ",
        options.window_steps, " steps x ", options.num_layers, " layers x ", options.num_experts,
        " experts is too large; use a shorter window");
  current_ = std::make_unique<std::atomic<int64_t>[]>(cells());
  for (size_t i = 0; i < cells(); ++i) current_[i].store(0, std::memory_order_relaxed);
  window_sum_.assign(cells(), 0);
  ring_.assign(size_t(options.window_steps) * cells(), 0);
}

void ExpertLoadRecorder::on_routing(int layer, const int32_t* topk_ids, int64_t num_tokens, int top_k) {
  const int row = layer - options_.first_layer;
  const int64_t n = num_tokens * top_k;
  if (row < 0 || row >= options_.num_layers) {
    if (n > 0) ignored_.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  std::atomic<int64_t>* counts = current_.get() + size_t(row) * options_.num_experts;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t e = topk_ids[i];
    if (e < 0 || e >= options_.num_experts) {
      ++bad;
      continue;
    }
    counts[e].fetch_add(1, std::memory_order_relaxed);
  }
  if (bad) ignored_.fetch_add(bad, std::memory_order_relaxed);
}

void ExpertLoadRecorder::on_step_end() {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = cells();
  if (options_.window_steps == 0) {
    for (size_t i = 0; i < n; ++i) window_sum_[i] += current_[i].exchange(0, std::memory_order_relaxed);
  } else {
    int32_t* slot = ring_.data() + size_t(ring_next_) * n;
    const bool full = in_window_ == options_.window_steps;
    for (size_t i = 0; i < n; ++i) {
      // One step cannot route 2^31 tokens to one expert; the clamp only keeps the sums consistent.
      int64_t c = std::min<int64_t>(current_[i].exchange(0, std::memory_order_relaxed),
                                    std::numeric_limits<int32_t>::max());
      window_sum_[i] += c - (full ? slot[i] : 0);
      slot[i] = int32_t(c);
    }
    ring_next_ = (ring_next_ + 1) % options_.window_steps;
    if (!full) ++in_window_;
  }
  if (options_.window_steps == 0) ++in_window_;
  ++total_steps_;
}

ExpertLoad ExpertLoadRecorder::snapshot() const {
  ExpertLoad load(options_.num_layers, options_.num_experts);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < cells(); ++i) load.values[i] = double(window_sum_[i]);
  return load;
}

int64_t ExpertLoadRecorder::steps_in_window() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_window_;
}

int64_t ExpertLoadRecorder::total_steps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_steps_;
}

std::string ExpertLoadRecorder::to_json() const { return expert_load_to_json(snapshot()); }

void ExpertLoadRecorder::write_json(const std::string& path) const { write_expert_load_file(snapshot(), path); }

void ExpertLoadRecorder::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < cells(); ++i) current_[i].store(0, std::memory_order_relaxed);
  std::fill(window_sum_.begin(), window_sum_.end(), 0);
  std::fill(ring_.begin(), ring_.end(), 0);
  ring_next_ = in_window_ = total_steps_ = 0;
  ignored_.store(0, std::memory_order_relaxed);
}

}  // namespace dsinfer::parallel
