#include "parallel/eplb_refined.h"

#include <algorithm>

namespace dsinfer::parallel::detail {

namespace {

// A node's placement with the per-GPU loads kept current, and the two kinds of move the search
// makes. Loads are doubles here (the DeepSeek policy's float32 is only needed for parity).
class NodeSearch {
 public:
  NodeSearch(const std::vector<double>& load, int gpus, std::vector<int32_t>& slot_expert)
      : w_(load), slot_expert_(slot_expert), per_gpu_(int(slot_expert.size()) / gpus),
        count_(load.size(), 0), slots_of_(load.size()), gpu_load_(gpus, 0.0), delta_(gpus, 0.0) {
    for (int s = 0; s < slots(); ++s) {
      count_[slot_expert_[s]]++;
      slots_of_[slot_expert_[s]].push_back(s);
    }
    for (int s = 0; s < slots(); ++s) gpu_load_[gpu(s)] += replica_load(slot_expert_[s]);
    for (double x : w_) mean_ += x / gpus;  // moves shift load between GPUs; the total stays
  }

  // Improves until no move lowers the most loaded GPU without raising another to its level.
  void run() {
    // Each accepted move takes one GPU off the top, so few are needed; the cap guards against
    // rounding cycles and keeps huge shapes (an iteration costs ~ per_gpu x (slots + experts) x
    // replicas per expert) to about 1e8 steps.
    const double per_move = double(per_gpu_) * (2.0 * slots() + double(w_.size())) * slots() / double(w_.size());
    const int max_moves = int(std::min(16.0 * slots() + 64, 1e8 / per_move));
    for (int it = 0; it < max_moves; ++it)
      if (!improve_once()) break;
  }

 private:
  struct Move {
    enum Kind { kNone, kSwap, kReassign } kind = kNone;
    int a = -1, b = -1;  // swap: slots a, b; reassign: slot a gets expert b
    double peak = 0;
  };

  int slots() const { return int(slot_expert_.size()); }
  int gpu(int slot) const { return slot / per_gpu_; }
  double replica_load(int e) const { return w_[e] / count_[e]; }

  bool improve_once() {
    int g = int(std::max_element(gpu_load_.begin(), gpu_load_.end()) - gpu_load_.begin());
    const double top = gpu_load_[g];
    if (top <= mean_ * (1 + 1e-12)) return false;  // nothing is below the mean: already perfect
    // Strictly below the current top, with a margin against rounding in the running sums.
    const double limit = top * (1 - 1e-12);
    Move best;
    best.peak = limit;

    const int g_begin = g * per_gpu_, g_end = g_begin + per_gpu_;
    // Swaps: a heavier replica on g trades places with a lighter one elsewhere.
    for (int a = g_begin; a < g_end; ++a) {
      const int x = slot_expert_[a];
      const double rx = replica_load(x);
      for (int b = 0; b < slots(); ++b) {
        if (b == g_begin) b = g_end;
        if (b >= slots()) break;
        const int y = slot_expert_[b];
        const double ry = replica_load(y);
        if (y == x || ry >= rx) continue;
        double peak = std::max(top - rx + ry, gpu_load_[gpu(b)] - ry + rx);
        if (peak < best.peak) best = {Move::kSwap, a, b, peak};
      }
    }
    // Reassigning a redundant replica on g to another expert: g sheds x's share, takes y's
    // smaller new share; x's other replicas get heavier, y's lighter.
    for (int a = g_begin; a < g_end; ++a) {
      const int x = slot_expert_[a];
      if (count_[x] < 2) continue;
      for (int y = 0; y < int(w_.size()); ++y)
        if (y != x) consider_reassign(a, y, best);
    }
    // Giving an expert on g one more replica, taken from a redundant replica elsewhere.
    for (int a = g_begin; a < g_end; ++a) {
      const int y = slot_expert_[a];
      if (std::find(slot_expert_.begin() + g_begin, slot_expert_.begin() + a, y) != slot_expert_.begin() + a)
        continue;  // y already tried from an earlier slot of g
      for (int t = 0; t < slots(); ++t) {
        if (t == g_begin) t = g_end;
        if (t >= slots()) break;
        const int x = slot_expert_[t];
        if (x != y && count_[x] >= 2) consider_reassign(t, y, best);
      }
    }

    if (best.kind == Move::kNone) return false;
    if (best.kind == Move::kSwap)
      apply_swap(best.a, best.b);
    else
      apply_reassign(best.a, best.b);
    return true;
  }

  // Peak load over the GPUs that reassigning slot t to expert y changes; recorded in best when
  // every changed GPU ends below the current best peak.
  void consider_reassign(int t, int y, Move& best) {
    const int x = slot_expert_[t];
    const double old_x = replica_load(x), new_x = w_[x] / (count_[x] - 1);
    const double old_y = replica_load(y), new_y = w_[y] / (count_[y] + 1);
    touched_.clear();
    add_delta(gpu(t), new_y - old_x);
    for (int u : slots_of_[x])
      if (u != t) add_delta(gpu(u), new_x - old_x);
    for (int u : slots_of_[y]) add_delta(gpu(u), new_y - old_y);
    double peak = 0;
    for (int h : touched_) {
      peak = std::max(peak, gpu_load_[h] + delta_[h]);
      delta_[h] = 0;
    }
    if (peak < best.peak) best = {Move::kReassign, t, y, peak};
  }

  void add_delta(int h, double d) {
    if (delta_[h] == 0 && std::find(touched_.begin(), touched_.end(), h) == touched_.end()) touched_.push_back(h);
    delta_[h] += d;
  }

  void apply_swap(int a, int b) {
    const int x = slot_expert_[a], y = slot_expert_[b];
    const double rx = replica_load(x), ry = replica_load(y);
    gpu_load_[gpu(a)] += ry - rx;
    gpu_load_[gpu(b)] += rx - ry;
    std::replace(slots_of_[x].begin(), slots_of_[x].end(), a, b);
    std::replace(slots_of_[y].begin(), slots_of_[y].end(), b, a);
    slot_expert_[a] = y;
    slot_expert_[b] = x;
  }

  void apply_reassign(int t, int y) {
    const int x = slot_expert_[t];
    // Take every replica of x and y off, change the counts, put them back: exact bookkeeping.
    for (int e : {x, y})
      for (int u : slots_of_[e]) gpu_load_[gpu(u)] -= replica_load(e);
    slots_of_[x].erase(std::find(slots_of_[x].begin(), slots_of_[x].end(), t));
    slots_of_[y].push_back(t);
    count_[x]--;
    count_[y]++;
    slot_expert_[t] = y;
    for (int e : {x, y})
      for (int u : slots_of_[e]) gpu_load_[gpu(u)] += replica_load(e);
  }

  const std::vector<double>& w_;
  std::vector<int32_t>& slot_expert_;
  const int per_gpu_;
  std::vector<int> count_;
  std::vector<std::vector<int>> slots_of_;
  std::vector<double> gpu_load_;
  double mean_ = 0;
  std::vector<double> delta_;  // scratch of consider_reassign, all zero between calls
  std::vector<int> touched_;
};

}  // namespace

void local_search_placement(const std::vector<double>& load, int gpus, std::vector<int32_t>& slot_expert) {
  NodeSearch search(load, gpus, slot_expert);
  search.run();
}

}  // namespace dsinfer::parallel::detail
