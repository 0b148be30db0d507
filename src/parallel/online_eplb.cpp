#include "parallel/online_eplb.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/byte_stream.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/timer.h"

namespace dsinfer::parallel {

namespace {

// Weight moves use tags from here up, eight per expert (its buffers), above every tag the
// dispatch uses (parallel/expert_parallel_moe.h: six per local expert).
constexpr int kTagBase = 1 << 16;
constexpr int kTagsPerExpert = 8;
constexpr size_t kRecentSteps = 64;

// "corrupt:R" / "exit:R": whether the fault is `kind` and names this rank.
bool fault_here(const std::string& fault, const char* kind, int rank) {
  const std::string want = std::string(kind) + ":" + std::to_string(rank);
  return fault == want;
}

}  // namespace

std::vector<int32_t> keep_in_place(const ExpertPlacement& plan, const ExpertPlacement& current, int layer) {
  const int N = plan.num_ranks(), S = plan.slots_per_rank();
  // overlap[b * N + r]: experts of the plan's bin b (slots [b S, (b + 1) S)) rank r holds now.
  std::vector<int> overlap(static_cast<size_t>(N) * size_t(N), 0);
  for (int r = 0; r < N; ++r) {
    const std::vector<int32_t> held = current.local_experts(layer, r);
    for (int b = 0; b < N; ++b)
      for (int32_t e : plan.local_experts(layer, b))
        overlap[size_t(b) * size_t(N) + size_t(r)] += std::find(held.begin(), held.end(), e) != held.end();
  }
  // Greedy: the pair that keeps the most experts first (ties: lowest bin, then rank).
  std::vector<int> rank_of_bin(size_t(N), -1);
  std::vector<uint8_t> rank_taken(size_t(N), 0);
  for (int k = 0; k < N; ++k) {
    int best_b = -1, best_r = -1, best = -1;
    for (int b = 0; b < N; ++b) {
      if (rank_of_bin[size_t(b)] >= 0) continue;
      for (int r = 0; r < N; ++r)
        if (!rank_taken[size_t(r)] && overlap[size_t(b) * size_t(N) + size_t(r)] > best)
          best = overlap[size_t(b) * size_t(N) + size_t(r)], best_b = b, best_r = r;
    }
    rank_of_bin[size_t(best_b)] = best_r;
    rank_taken[size_t(best_r)] = 1;
  }
  std::vector<int32_t> row(static_cast<size_t>(N) * size_t(S));
  for (int b = 0; b < N; ++b) {
    const std::vector<int32_t> bin = plan.local_experts(layer, b);
    std::copy(bin.begin(), bin.end(), row.begin() + int64_t(rank_of_bin[size_t(b)]) * S);
  }
  return row;
}

uint64_t packed_checksum(const model::PackedMlp& e) {
  uint64_t h = 0x5eed;
  for (std::span<const uint8_t> b : e.buffers()) h = checksum_bytes(h, b.data(), b.size());
  return h;
}

OnlineEplb::OnlineEplb(Communicator& comm, ExpertParallelMoe& executor, ExpertLoadRecorder& recorder,
                       const model::ModelConfig& cfg, const OnlineEplbOptions& options)
    : comm_(comm), executor_(executor), recorder_(recorder), cfg_(cfg), options_(options) {
  const ExpertPlacement& P = executor_.placement();
  for (int l = 0; l < int(cfg.num_hidden_layers); ++l)
    if (P.is_moe_layer(l)) moe_layers_.push_back(l);
  check(int64_t(moe_layers_.size()) * P.num_slots() * kTagsPerExpert < int64_t(comm_.tag_upper_bound()) - kTagBase,
        "this MPI's tag range is too small for online EPLB's weight moves");
  // Every expert's checksum, from the ranks that hold it: what a moved copy must match.
  const int S = P.slots_per_rank(), N = comm_.size(), L = int(moe_layers_.size());
  std::vector<uint64_t> mine(static_cast<size_t>(L) * size_t(S)), all(mine.size() * size_t(N));
  for (int i = 0; i < L; ++i)
    for (int j = 0; j < S; ++j)
      mine[size_t(i) * size_t(S) + size_t(j)] = packed_checksum(executor_.local_layers()[size_t(moe_layers_[size_t(i)])].experts[size_t(j)]);
  comm_.allgather(mine.data(), mine.size() * sizeof(uint64_t), all.data(), "the experts' checksums");
  checksum_.assign(size_t(cfg.num_hidden_layers), {});
  for (int i = 0; i < L; ++i) {
    const int l = moe_layers_[size_t(i)];
    std::vector<uint64_t>& row = checksum_[size_t(l)];
    row.assign(size_t(P.num_logical()), 0);
    for (int r = 0; r < N; ++r)
      for (int j = 0; j < S; ++j) {
        const int32_t e = P.logical(l, r * S + j);
        const uint64_t c = all[(size_t(r) * size_t(L) + size_t(i)) * size_t(S) + size_t(j)];
        check(row[size_t(e)] == 0 || row[size_t(e)] == c, "layer ", l, ": two replicas of expert ", e,
              " hold different weights (rank ", r, "'s copy differs)");
        row[size_t(e)] = c;
      }
  }
  recent_steps_.reserve(kRecentSteps);
  sorted_steps_.reserve(kRecentSteps);
  last_plan_time_ = now_seconds();
}

OnlineEplb::~OnlineEplb() {
  if (!moving_) return;
  try {
    for (Outgoing& out : outgoing_) comm_.wait(out.exchange, "online EPLB: the sends of a move the group stopped in", 5);
    for (Incoming& in : incoming_) comm_.wait(in.exchange, "online EPLB: the receives of a move the group stopped in", 5);
  } catch (const std::exception& e) {
    log_warn("online EPLB: ", e.what());
  }
}

uint64_t OnlineEplb::expected_checksum(int layer, int32_t expert) const { return checksum_[size_t(layer)][size_t(expert)]; }

void OnlineEplb::at_step_boundary(bool stepped) {
  const double t0 = now_seconds();
  if (stepped && last_iteration_ > 0 && !moving_) {  // an ordinary step-loop iteration
    const double s = t0 - last_iteration_;
    if (recent_steps_.size() < kRecentSteps) recent_steps_.push_back(s);
    else recent_steps_[recent_next_++ % kRecentSteps] = s;
  }
  // Half an ordinary step for this boundary's posting and checksums (1 ms before there is one).
  const double deadline = t0 + std::max(1e-3, 0.5 * metrics_.median_step_seconds);
  if (moving_) {
    check_arrivals(deadline);
    post_some(deadline);
    const int state = agree();
    if (state == 0) switch_placement();
    else if (state == 1) drop_move();
    else if (comm_.timeout() > 0 && now_seconds() - move_started_ > comm_.timeout())
      throw GroupFailure(str("online EPLB: the expert weight move has not finished after ", comm_.timeout(),
                             " s (--ep-timeout)"));
  } else if (due(stepped)) {
    plan();
    if (moving_) start_move();
  }
  const double done = now_seconds();
  metrics_.longest_boundary_seconds = std::max(metrics_.longest_boundary_seconds, done - t0);
  if (!recent_steps_.empty()) {
    sorted_steps_.assign(recent_steps_.begin(), recent_steps_.end());  // capacity kept: no allocation
    std::nth_element(sorted_steps_.begin(), sorted_steps_.begin() + long(sorted_steps_.size() / 2), sorted_steps_.end());
    metrics_.median_step_seconds = sorted_steps_[sorted_steps_.size() / 2];
  }
  last_iteration_ = done;
}

bool OnlineEplb::due(bool stepped) {
  if (stepped) ++steps_since_plan_;
  if (options_.interval_steps > 0) return steps_since_plan_ >= options_.interval_steps;
  if (options_.interval_seconds <= 0) return false;
  // Rank 0's clock decides, so every rank plans at the same boundary.
  const bool mine = comm_.is_root() && now_seconds() - last_plan_time_ >= options_.interval_seconds;
  return comm_.allreduce_max(mine ? 1 : 0, "online EPLB: is a rebalance due") != 0;
}

void OnlineEplb::plan() {
  steps_since_plan_ = 0;
  last_plan_time_ = now_seconds();
  // The group's load: every rank's recorded window, summed.
  ExpertLoad load = recorder_.snapshot();
  std::vector<int64_t> counts(load.values.size());
  for (size_t i = 0; i < counts.size(); ++i) counts[i] = std::llround(load.values[i]);
  comm_.allreduce_sum(counts.data(), counts.size(), "online EPLB: the group's expert load");
  int64_t total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    load.values[i] = double(counts[i]);
    total += counts[i];
  }
  recorder_.reset();  // each plan sees the load since the last one
  const ExpertPlacement& current = executor_.placement();
  // Rank 0 plans and sends the slot table (an empty one: no plan, and why is in its log).
  std::vector<uint8_t> msg;
  if (comm_.is_root() && total > 0) {
    try {
      const ExpertPlacement p =
          ExpertPlacement::from_load(load, cfg_, comm_.size(), current.num_slots(), options_.policy);
      ByteWriter w(msg);
      for (int l : moe_layers_)
        for (int32_t e : keep_in_place(p, current, l)) w.put(e);
    } catch (const Error& e) {
      log_warn("online EPLB: no plan: ", e.what());
      msg.clear();
    }
  }
  comm_.broadcast(msg, 0, "online EPLB's plan from rank 0");
  if (msg.empty()) {
    ++metrics_.skipped;
    return;
  }
  ByteReader r(msg);
  std::vector<std::vector<int32_t>> rows(moe_layers_.size(), std::vector<int32_t>(size_t(current.num_slots())));
  for (auto& row : rows)
    for (int32_t& e : row) e = r.get<int32_t>();
  next_ = ExpertPlacement::from_phy2log(rows, cfg_, comm_.size(), "online EPLB's plan");
  next_imbalance_before_ = current.rank_max_over_mean(load);
  next_imbalance_after_ = next_.rank_max_over_mean(load);
  if (next_ == current || next_imbalance_after_ > next_imbalance_before_ * (1 - kMinGain)) {
    ++metrics_.skipped;
    return;
  }
  // Who sends what: every rank works out the same list. A rank that already holds an expert keeps
  // it (a local move at the switch); otherwise one of its current holders sends it, chosen by the
  // destination slot so that a hot expert's copies come from all its replicas.
  moves_.clear();
  const int S = current.slots_per_rank(), N = comm_.size();
  for (int l : moe_layers_)
    for (int r = 0; r < N; ++r)
      for (int j = 0; j < S; ++j) {
        const int32_t e = next_.logical(l, r * S + j);
        std::vector<std::pair<int, int>> holders;  // (rank, local slot) of e now
        bool local = false;
        for (int s = 0; s < current.num_slots(); ++s) {
          if (current.logical(l, s) != e) continue;
          if (current.rank_of_slot(s) == r) local = true;
          holders.emplace_back(current.rank_of_slot(s), current.local_of_slot(s));
        }
        if (local) continue;
        const auto [src, src_slot] = holders[size_t(r + j) % holders.size()];
        moves_.push_back({l, r, j, src, src_slot, e});
      }
  moving_ = true;
  move_started_ = now_seconds();
  log_info("online EPLB: moving ", moves_.size(), " experts; planned max/mean load per rank ", next_imbalance_before_,
           " -> ", next_imbalance_after_);
}

void OnlineEplb::start_move() {
  const int me = comm_.rank();
  size_t receiving = 0, sending = 0;
  for (const Move& m : moves_) {
    receiving += m.dst == me;
    sending += m.src == me;
  }
  incoming_.clear();
  outgoing_.clear();
  incoming_.reserve(receiving);  // posted buffers and requests must not move
  outgoing_.reserve(sending);
  next_post_ = 0;
  bytes_in_flight_ = 0;
  post_some(now_seconds() + std::max(1e-3, 0.5 * metrics_.median_step_seconds));
  if (fault_here(options_.fault, "exit", me)) {  // DSINFER_EPLB_FAULT: this rank dies mid-move
    log_warn("online EPLB: exiting mid-move (DSINFER_EPLB_FAULT)");
    _exit(9);
  }
}

void OnlineEplb::post_some(double deadline) {
  const int me = comm_.rank();
  std::vector<model::PackedExperts>& live = executor_.local_layers();
  for (; next_post_ < moves_.size(); ++next_post_) {
    const Move& m = moves_[next_post_];
    if (m.dst != me && m.src != me) continue;
    // Always at least one expert in flight, so a move of experts larger than the cap still goes.
    if (bytes_in_flight_ > 0 && (bytes_in_flight_ >= kMaxBytesInFlight || now_seconds() > deadline)) break;
    const int tag = kTagBase + int(next_post_) * kTagsPerExpert;
    if (m.dst == me) {
      Incoming& in = incoming_.emplace_back();
      in.move = &m;
      in.staged = live[size_t(m.layer)].experts[0].zeros_like();
      const auto bufs = in.staged.buffers();
      for (size_t b = 0; b < bufs.size(); ++b) comm_.irecv(bufs[b].data(), bufs[b].size(), m.src, tag + int(b), in.exchange);
      in.bytes = in.staged.bytes();
      bytes_in_flight_ += in.bytes;
    } else {
      Outgoing& out = outgoing_.emplace_back();
      const model::PackedMlp& expert = live[size_t(m.layer)].experts[size_t(m.src_slot)];
      const auto bufs = expert.buffers();
      for (size_t b = 0; b < bufs.size(); ++b) comm_.isend(bufs[b].data(), bufs[b].size(), m.dst, tag + int(b), out.exchange);
      out.bytes = expert.bytes();
      bytes_in_flight_ += out.bytes;
    }
  }
}

void OnlineEplb::check_arrivals(double deadline) {
  for (Outgoing& out : outgoing_)
    if (!out.done && comm_.test(out.exchange, "online EPLB's expert sends")) {
      out.done = true;
      bytes_in_flight_ -= out.bytes;
    }
  for (Incoming& in : incoming_) {
    if (!in.arrived && comm_.test(in.exchange, "online EPLB's expert receives")) {
      in.arrived = true;
      bytes_in_flight_ -= in.bytes;
    }
    if (!in.arrived || in.verified || now_seconds() > deadline) continue;
    if (&in == &incoming_.front() && fault_here(options_.fault, "corrupt", comm_.rank()))
      in.staged.buffers().front()[0] ^= 0x40;  // DSINFER_EPLB_FAULT: a bad copy
    in.verified = true;
    in.ok = packed_checksum(in.staged) == expected_checksum(in.move->layer, in.move->expert);
    if (!in.ok)
      log_warn("online EPLB: the copy of layer ", in.move->layer, " expert ", in.move->expert, " from rank ",
               in.move->src, " failed its checksum");
  }
}

int OnlineEplb::agree() {
  const int me = comm_.rank();
  bool posted_all = true;
  for (size_t i = next_post_; i < moves_.size() && posted_all; ++i)
    posted_all = moves_[i].dst != me && moves_[i].src != me;
  int mine = posted_all ? 0 : 2;
  for (const Outgoing& out : outgoing_)
    if (!out.done) mine = 2;
  for (const Incoming& in : incoming_) {
    if (!in.verified) mine = 2;
    else if (!in.ok && mine == 0) mine = 1;
  }
  return int(comm_.allreduce_max(mine, "online EPLB: has every rank its new experts"));
}

void OnlineEplb::switch_placement() {
  const int me = comm_.rank();
  const ExpertPlacement& current = executor_.placement();
  const int S = current.slots_per_rank();
  std::vector<model::PackedExperts>& old = executor_.local_layers();
  std::vector<model::PackedExperts> layers(old.size());
  for (int l : moe_layers_) {
    // Each new slot takes its staged copy, or the old slot holding its expert (moved); an expert
    // that now fills a second slot here is copied from the first, once everything has moved.
    std::vector<model::PackedMlp> slots(static_cast<size_t>(S));
    std::vector<uint8_t> filled(size_t(S), 0);
    for (Incoming& in : incoming_)
      if (in.move->layer == l) {
        slots[size_t(in.move->dst_slot)] = std::move(in.staged);
        filled[size_t(in.move->dst_slot)] = 1;
      }
    std::vector<int> now_in(size_t(S), -1);  // old local slot -> the new slot its expert moved to
    std::vector<std::pair<int, int>> copies;  // (new slot, new slot to copy)
    for (int j = 0; j < S; ++j) {
      if (filled[size_t(j)]) continue;
      const int32_t e = next_.logical(l, me * S + j);
      int first = -1, free = -1;
      for (int c = 0; c < S; ++c) {
        if (current.logical(l, me * S + c) != e) continue;
        if (first < 0) first = c;
        if (free < 0 && now_in[size_t(c)] < 0) free = c;
      }
      if (free < 0) {
        copies.emplace_back(j, now_in[size_t(first)]);
        continue;
      }
      now_in[size_t(free)] = j;
      slots[size_t(j)] = std::move(old[size_t(l)].experts[size_t(free)]);
    }
    for (auto [to, from] : copies) slots[size_t(to)] = slots[size_t(from)].copy();
    for (model::PackedMlp& e : slots) layers[size_t(l)].add(std::move(e));
  }
  // Layers EPLB does not place (the MTP module's) keep their experts where they are.
  for (size_t l = 0; l < old.size(); ++l)
    if (layers[l].empty()) layers[l] = std::move(old[l]);
  // Every rank knows the whole move list: the group's totals need no message.
  uint64_t bytes = 0;
  for (const Move& m : moves_) bytes += uint64_t(layers[size_t(m.layer)].experts[0].bytes());
  executor_.adopt(std::move(next_), std::move(layers));
  ++metrics_.rebalances;
  metrics_.experts_moved += moves_.size();
  metrics_.bytes_moved += bytes;
  metrics_.imbalance_before = next_imbalance_before_;
  metrics_.imbalance_after = next_imbalance_after_;
  metrics_.last_move_seconds = now_seconds() - move_started_;
  log_info("online EPLB: switched to the new placement after ", metrics_.last_move_seconds, " s (",
           double(bytes) / 1e6, " MB of experts moved over the group)");
  incoming_.clear();
  outgoing_.clear();
  moves_.clear();
  moving_ = false;
}

void OnlineEplb::drop_move() {
  ++metrics_.aborted;
  log_warn("online EPLB: a rank's copy failed its checksum; every rank keeps the old placement");
  incoming_.clear();
  outgoing_.clear();
  moves_.clear();
  moving_ = false;
}

}  // namespace dsinfer::parallel
