// The step loop of one rank of a data-parallel group (engine.h has the picture). Every iteration,
// on every rank, in this order:
//   1. control  rank 0 broadcasts the new requests (each with the rank its balancer chose), the
//               cancels of requests other ranks run, and the stop/abort flags;
//   2. status   every rank's load is gathered everywhere (MPI_Iallgather of a fixed struct): the
//               balancers' input, /metrics' per-rank gauges, and whether any rank has work;
//   3. step     if any rank has work, every rank steps (an empty batch where it has none), so each
//               forward meets the others in every MoE layer;
//   4. updates  ranks > 0 send their streams' news to rank 0 (MPI_Igatherv), which relays it to
//               the clients' streams.
// Waits are the communicator's: polled, yielding, bounded by its watchdog. Whatever goes wrong
// between ranks (a timeout, a failed step that left this rank out of step) fails the group: every
// request in flight gets the error, rank 0 stops accepting, and every rank's loop ends.
#include <algorithm>

#include "base/byte_stream.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/timer.h"
#include "engine/engine.h"
#include "engine/wire.h"

namespace dsinfer::engine {

namespace {

// What one rank tells the others every iteration: its /metrics gauges, plus what the balancers
// and the step decision need beyond them.
struct RankStatus {
  RankGauges gauges;
  double attention_work = 0;  // sum over its prompts of (tokens left to prefill)^2
  uint8_t has_work = 0;
};

// The prefix-affinity key of a prompt: its first full KV block (the cache's block size).
uint64_t prefix_key_of(const std::vector<int32_t>& prompt) {
  if (int64_t(prompt.size()) < parallel::kDpBlockTokens) return 0;
  return fingerprint_bytes(0x9e3779b97f4a7c15ull, prompt.data(), size_t(parallel::kDpBlockTokens) * sizeof(int32_t)) | 1;
}

}  // namespace

void Engine::group_loop() {
  const bool root = group_->is_root();
  bool group_idle = true;
  for (;;) {
    std::vector<Incoming> incoming;
    bool abort_everything = false, stopping = false;
    {
      std::unique_lock lock(mu_);
      // Rank 0 sleeps only while the whole group is idle (the others wait in the broadcast).
      if (root && group_idle && incoming_.empty() && !stop_ && !abort_all_ && !imports_changed_ && !disk_loaded_)
        wake_.wait_for(lock, std::chrono::milliseconds(50));
      imports_changed_ = false;
      disk_loaded_ = false;
      incoming.swap(incoming_);
      waiting_ += int64_t(incoming.size());  // as Engine::loop: never in neither count
      abort_everything = std::exchange(abort_all_, false);
      stopping = stop_;
    }
    try {
      if (!exchange_control(incoming, abort_everything, stopping)) break;
      if (!importing_.empty()) poll_imports(now_seconds());  // rank 0's: before its status counts them
      if (disk_) disk_boundary();  // each rank's own tier (they may share a directory)
      group_idle = !exchange_status();
      if (!group_idle) step();
      exchange_updates();
      if (boundary_) {
        boundary_->at_step_boundary(!group_idle);
        std::lock_guard lock(metrics_mu_);
        metrics_.online_eplb = boundary_->online_eplb();
      }
    } catch (const std::exception& e) {
      fail_group(e.what());
      break;
    }
    publish_gauges();
  }
  // Whatever is left ends here (a stop aborts; a failure has already failed everything).
  std::vector<Request*> left;
  for (auto& [id, r] : requests_) left.push_back(r.get());
  for (Request* r : left) abort(*r);
  for (auto& [id, rr] : remote_) {
    rr.stream->finish("the server stopped");
    --in_flight_;
  }
  remote_.clear();
  publish_gauges();
}

bool Engine::exchange_control(std::vector<Incoming>& incoming, bool abort_everything, bool stopping) {
  const bool root = group_->is_root();
  std::vector<uint8_t> msg;
  if (root) {
    ByteWriter w(msg);
    w.put(uint8_t(stopping));
    w.put(uint8_t(abort_everything));
    // Each new request to the rank the balancers choose; rank 0's own are accepted here.
    std::vector<size_t> others;
    for (size_t i = 0; i < incoming.size(); ++i) {
      // A disaggregated request's KV travels through rank 0's transfer endpoint, so rank 0 runs it.
      const bool transfers = incoming[i].export_to || incoming[i].import_from;
      const int rank = transfers ? 0
                                 : balancer_->assign({int64_t(incoming[i].prompt.size()), prefix_key_of(incoming[i].prompt)});
      if (rank == 0) {
        admit(std::move(incoming[i]));
        continue;
      }
      others.push_back(i);
      remote_[incoming[i].stream->id] = {incoming[i].stream, incoming[i].arrival, rank};
    }
    w.put(uint64_t(others.size()));
    for (size_t i : others) {
      const Incoming& in = incoming[i];
      w.put(in.stream->id);
      w.put(int32_t(remote_[in.stream->id].rank));
      w.put_vector(in.prompt);
      write_params(w, in.params);
    }
    std::vector<uint64_t> cancels;
    for (auto& [id, rr] : remote_)
      if (rr.stream->cancelled && !rr.cancel_sent) {
        rr.cancel_sent = true;
        cancels.push_back(id);
      }
    w.put_vector(cancels);
  }
  group_->broadcast(msg, 0, "the step's control message from rank 0");

  ByteReader r(msg);
  stopping = r.get<uint8_t>();
  abort_everything = r.get<uint8_t>();
  const uint64_t n = r.get<uint64_t>();
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t id = r.get<uint64_t>();
    const int rank = r.get<int32_t>();
    std::vector<int32_t> prompt = r.get_vector<int32_t>();
    SamplingParams params = read_params(r);
    if (rank == group_->rank()) host_request(id, std::move(prompt), std::move(params));
  }
  for (uint64_t id : r.get_vector<uint64_t>())
    if (auto it = hosted_.find(id); it != hosted_.end()) it->second->cancelled = true;
  std::vector<Request*> gone;
  for (auto& [id, req] : requests_)
    if (abort_everything || stopping || req->stream->cancelled) gone.push_back(req.get());
  for (Request* req : gone) abort(*req);
  return !stopping;
}

void Engine::host_request(uint64_t id, std::vector<int32_t> prompt, SamplingParams params) {
  auto stream = std::make_shared<RequestStream>(int(params.n));
  stream->id = id;
  // Pushed on this (the step) thread; the news is collected after the step.
  stream->set_listener([this, id] { dirty_.push_back(id); });
  hosted_[id] = stream;
  ++in_flight_;
  admit({std::move(prompt), std::move(params), stream, now_seconds()});
}

bool Engine::exchange_status() {
  RankStatus mine;
  RankGauges& g = mine.gauges;
  mine.has_work = !scheduler_->idle();
  for (auto& [id, req] : requests_)
    for (auto& s : req->seqs) g.running += s->state != SeqState::kFinished;
  prefill_load(g.prefill_tokens, mine.attention_work);
  g.waiting = int64_t(scheduler_->num_waiting());
  g.kv_blocks_used = blocks_->stats().used;
  g.kv_blocks_total = pool_->num_blocks();
  {
    std::lock_guard lock(metrics_mu_);
    g.steps = metrics_.steps;
    g.step_tokens = metrics_.step_tokens;
    g.mtp_drafted = metrics_.mtp_drafted;
    g.mtp_accepted = metrics_.mtp_accepted;
    g.mtp_verify_steps = metrics_.mtp_verify_steps;
    g.mtp_emitted = metrics_.mtp_emitted;
  }
  if (boundary_) g.expert_rows = boundary_->expert_rows();
  std::vector<RankStatus> all(size_t(group_->size()));
  group_->allgather(&mine, sizeof mine, all.data(), "the ranks' status");
  bool any = false;
  for (const RankStatus& s : all) any |= s.has_work != 0;
  if (group_->is_root()) {
    std::vector<RankGauges> gauges;
    for (int r = 0; r < group_->size(); ++r) {
      const RankGauges& rg = all[size_t(r)].gauges;
      balancer_->report(r, {rg.prefill_tokens, all[size_t(r)].attention_work, rg.running, rg.kv_blocks_used,
                            rg.kv_blocks_total});
      gauges.push_back(rg);
    }
    std::lock_guard lock(metrics_mu_);
    metrics_.ranks = std::move(gauges);
  }
  int64_t waiting = 0;
  for (const RankStatus& s : all) waiting += s.gauges.waiting;
  waiting_ = waiting;  // the queue limit counts the whole group's queue
  return any;
}

void Engine::exchange_updates() {
  std::vector<uint8_t> msg;
  if (!group_->is_root()) {
    std::sort(dirty_.begin(), dirty_.end());
    dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
    // A stream that finished was reported and forgotten; it is not dirty again.
    dirty_.erase(std::remove_if(dirty_.begin(), dirty_.end(), [&](uint64_t id) { return !hosted_.count(id); }),
                 dirty_.end());
    ByteWriter w(msg);
    w.put(uint64_t(dirty_.size()));
    std::vector<ChoiceUpdate> updates;
    for (uint64_t id : dirty_) {
      auto it = hosted_.find(id);
      updates.clear();
      const bool done = it->second->wait(updates, 0);
      w.put(id);
      w.put(uint64_t(updates.size()));
      for (const ChoiceUpdate& u : updates) write_update(w, u);
      w.put(uint8_t(done));
      if (done) {
        w.put(it->second->usage());
        w.put_string(it->second->error());
        hosted_.erase(it);  // in_flight_ fell when the engine finished it
      }
    }
    dirty_.clear();
  }
  std::vector<std::vector<uint8_t>> all = group_->gather(msg, 0, "the ranks' stream updates");
  for (size_t rank = 1; rank < all.size(); ++rank) {
    ByteReader r(all[rank]);
    const uint64_t n = r.get<uint64_t>();
    for (uint64_t i = 0; i < n; ++i) relay_update(r);
  }
}

void Engine::relay_update(ByteReader& r) {
  const uint64_t id = r.get<uint64_t>();
  auto it = remote_.find(id);
  check(it != remote_.end(), "a rank reported on request ", id, ", which rank 0 does not know");
  RemoteRequest& rr = it->second;
  const double now = now_seconds();
  const uint64_t n = r.get<uint64_t>();
  for (uint64_t i = 0; i < n; ++i) {
    ChoiceUpdate u = read_update(r);
    rr.any_length |= u.finish == FinishReason::kLength;
    if (!u.token_ids.empty() && !rr.first_token_seen) {
      rr.first_token_seen = true;
      std::lock_guard lock(metrics_mu_);
      metrics_.ttft.observe(now - rr.arrival);
    }
    rr.stream->push(std::move(u));
  }
  if (!r.get<uint8_t>()) return;
  const Usage usage = r.get<Usage>();
  const std::string error = r.get_string();
  {
    std::lock_guard lock(metrics_mu_);
    if (!error.empty() || rr.cancel_sent) ++metrics_.requests_aborted;
    else ++(rr.any_length ? metrics_.requests_finished_length : metrics_.requests_finished_stop);
    metrics_.prompt_tokens += uint64_t(usage.prompt_tokens);
    metrics_.cached_prompt_tokens += uint64_t(usage.cached_tokens);
    metrics_.disk_cached_prompt_tokens += uint64_t(usage.disk_cached_tokens);
    metrics_.generation_tokens += uint64_t(usage.completion_tokens);
    metrics_.e2e.observe(now - rr.arrival);
  }
  rr.stream->set_usage(usage);
  rr.stream->finish(error);
  --in_flight_;
  remote_.erase(it);
}

void Engine::fail_group(const std::string& why) {
  log_warn("the expert-parallel group failed: ", why);
  {
    std::lock_guard lock(mu_);
    stop_ = true;  // submit() refuses from now on
  }
  accepting_ = false;
  {
    std::lock_guard lock(metrics_mu_);
    group_failure_ = why;
  }
  const std::string message = "the expert-parallel group failed: " + why;
  fail_all_local(message);
  for (auto& [id, rr] : remote_) {
    rr.stream->finish(message);
    --in_flight_;
  }
  remote_.clear();
  hosted_.clear();
}

}  // namespace dsinfer::engine
