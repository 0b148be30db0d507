// Expert-parallel dispatch and combine (parallel::ExpertParallelMoe) under mpirun, beside MPI's
// own point-to-point latency and bandwidth between ranks 0 and 1 and this machine's limits, all
// measured in the same run:
//   mpirun --oversubscribe --bind-to none -np N ep_bench [--smoke] [--json] [--reps R] [--step-reps S]
//          [--tokens T1,T2,..] [--no-steps] [--stage-costs FILE]
// Alone (no mpirun) it is a group of one: no MPI, nothing crosses a wire, only the local work.
//
// Sections (only rank 0 prints; --json prints one JSON line per measurement instead of tables):
// 1. p2p: ping-pong between ranks 0 and 1, 8 B .. 4 MB, with MPI_Send/MPI_Recv (MPI's own best)
//    and with the Communicator's isend/irecv/wait (the polling, yielding wait the dispatch uses).
//    One-way time = round trip / 2; GB/s = bytes / one-way time. The p2p bandwidth the dispatch
//    is compared with is the median of MPI_Send/Recv's GB/s over the messages of 1 MB and more.
// 2. dispatch + combine of ExpertParallelMoe on bench-v3-small (hidden 1024, 64 experts, top-8)
//    cut to 4 layers (one dense, three MoE; the calls use the first MoE layer, section 4 all of
//    them) and a 2048-token vocabulary, so each rank's random checkpoint is ~0.7 GB (BF16) /
//    ~0.35 GB (FP8) instead of GBs: neither cut changes a byte of the dispatch (--smoke also cuts
//    the layers to 2, the experts' width to 128, T to {1, 32} and the calls to 3, to run in
//    seconds). T random tokens per rank, each routed to top_k distinct experts drawn uniformly;
//    normal mode for every T (1, 2, 4, .. 2048; --tokens LIST picks others), low latency for
//    T <= its capacity (128); BF16 payload (BF16 checkpoint) and FP8 payload (FP8 checkpoint, FP8
//    dispatch). One call = one MoE layer: begin() (encode, layout, normal mode's blocking count
//    all-to-all, post), compute() (the dispatch wait, then this rank's expert GEMMs, the results
//    encoded and posted back), finish() (the combine wait, the sums), each timed, and the
//    DispatchStats::wait_seconds deltas taken between them, so dispatch and combine are apart:
//      dispatch = begin() + the wait in compute(): from the call until this rank's tokens are in;
//      combine  = the wait in finish(): from the results' post until every result is back.
//    Both waits include waiting for a slower peer (its encoding; for combine its expert GEMMs),
//    so the rank with the least of each in a call, the closest to pure transfer, is printed too.
//    Bytes are DispatchStats deltas (to other ranks only); GB/s = bytes sent per rank / time
//    (and / the least time), beside MPI's p2p GB/s of section 1.
//    Every per-rank figure is the mean over ranks within one call, then the median over calls;
//    "layer" is the slowest rank's begin + finish of each call, median over calls.
// 3. bytes per token against plan/comm_model.cpp (DeepEP's counting), from the largest T.
// 4. model steps, one vs two micro-batches: a DeepSeekModel on section 2's checkpoint (both
//    payloads; FP8 with the FP8 dispatch) with an ExpertParallelMoe executor over the world group
//    and a latent pool of zeros. Decode: 32 sequences per rank, one token each over 256 cached
//    tokens (low-latency mode); prefill: 4 sequences of 256 new tokens per rank (normal mode);
//    smoke 4 x 1 over 64 and 2 x 16. Each with micro_batches 1 and 2, warm-up, then S steps of
//    each (--step-reps, 7; smoke 2), the two interleaved, a barrier before each. Per (phase,
//    micro-batches): the step (median over steps of the slowest rank), the exposed communication
//    (wait_seconds + layout_seconds deltas, mean over ranks, median over steps), and each stage's
//    compute per step from the profile's totals (DSINFER_PROFILE, set here) with the waits taken
//    out, mean over ranks; for two micro-batches the step ratio on/off and the share of the
//    exposed communication hidden, 1 - exposed(2) / exposed(1). --stage-costs FILE writes them
//    with the bytes sent and section 1's latency and bandwidth for `dsinfer simulate
//    --stage-costs FILE` (plan/measured_pipeline.h), which predicts the step times from them.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/profile.h"
#include "base/timer.h"
#include "cache/kv_pool.h"
#include "machine_limits.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/deepseek.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weights.h"
#include "parallel/expert_parallel_moe.h"
#include "parallel/mpi_runtime.h"
#include "plan/comm_model.h"
#include "plan/measured_pipeline.h"
#include "routed_tokens.h"  // tests/support: the tests' synthetic routing

using namespace dsinfer;

namespace {

struct Options {
  bool smoke = false, json = false, steps = true;
  int reps = 0, step_reps = 0;
  std::vector<int64_t> tokens;  // section 2's tokens per rank (empty: the default sweep)
  std::string stage_costs;  // section 4's measured costs for `dsinfer simulate --stage-costs`
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--smoke") o.smoke = true;
    else if (a == "--json") o.json = true;
    else if (a == "--reps" && i + 1 < argc) o.reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--step-reps" && i + 1 < argc) o.step_reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--stage-costs" && i + 1 < argc) o.stage_costs = argv[++i];
    else if (a == "--no-steps") o.steps = false;
    else if (a == "--tokens" && i + 1 < argc) {
      const std::string list = argv[++i];
      for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        const std::string item = list.substr(at, comma - at);
        char* end = nullptr;
        const long v = std::strtol(item.c_str(), &end, 10);
        check(!item.empty() && *end == '\0' && v >= 1 && v <= (1 << 16), "ep_bench: --tokens wants a list like 1,8,128, got '",
              list, "'");
        o.tokens.push_back(v);
        at = comma + 1;
      }
    } else
      fail("ep_bench: unknown flag ", a,
           " (flags: --smoke --json --reps N --step-reps N --tokens T1,T2,.. --no-steps --stage-costs FILE)");
  }
  check(o.steps || o.stage_costs.empty(), "ep_bench: --stage-costs needs the model steps (drop --no-steps)");
  if (o.reps == 0) o.reps = o.smoke ? 3 : 20;
  if (o.step_reps == 0) o.step_reps = o.smoke ? 2 : 7;
  return o;
}

// Element-wise over the group's ranks, on every rank (this process's values alone without MPI).
std::vector<double> allreduce(const parallel::Communicator& comm, std::vector<double> v, MPI_Op op) {
  if (comm.uses_mpi() && !v.empty())
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(v.size()), MPI_DOUBLE, op, MPI_COMM_WORLD);
  return v;
}

// Ranks line up right before a timed call (MPI's barrier: it busy-polls, so ranks leave it
// together rather than one sleep-poll apart).
void tight_barrier(const parallel::Communicator& comm) {
  if (comm.uses_mpi()) MPI_Barrier(MPI_COMM_WORLD);
}

// Ranks that sit out a long stretch (machine limits, ping-pong) wait here in the Communicator's
// sleeping poll, leaving the cores to the ranks at work.
void idle_barrier(parallel::Communicator& comm, const char* what) { comm.allreduce_max(0, what); }

// ---- 1. point to point ----

struct P2p {
  int64_t bytes = 0;
  double mpi_oneway_s = 0, comm_oneway_s = 0;
};

std::vector<P2p> ping_pong(parallel::Communicator& comm, bool smoke) {
  std::vector<int64_t> sizes = {8, 64, 512, 4096, 32768, 262144, 1 << 20, 2 << 20, 4 << 20};
  if (smoke) sizes = {8, 4096, 1 << 20};
  std::vector<P2p> out;
  const int me = comm.rank();
  if (me > 1) return out;
  const int peer = 1 - me;
  std::vector<uint8_t> sbuf(size_t(4) << 20, 1), rbuf(size_t(4) << 20, 0);
  parallel::Exchange x;
  // One sample: the mean round trip of `iters` exchanges of n bytes, ~16 MB moved (at least 4
  // round trips, at most 1000).
  auto sample = [&](int64_t n, bool mpi) {
    const int iters = int(std::clamp<int64_t>((int64_t(16) << 20) / n, 4, smoke ? 100 : 1000));
    const double t0 = now_seconds();
    for (int i = 0; i < iters; ++i) {
      if (mpi && me == 0) {
        MPI_Send(sbuf.data(), int(n), MPI_BYTE, peer, 7, MPI_COMM_WORLD);
        MPI_Recv(rbuf.data(), int(n), MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else if (mpi) {
        MPI_Recv(rbuf.data(), int(n), MPI_BYTE, peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(sbuf.data(), int(n), MPI_BYTE, peer, 7, MPI_COMM_WORLD);
      } else if (me == 0) {
        x.clear();
        comm.irecv(rbuf.data(), size_t(n), peer, 8, x);
        comm.isend(sbuf.data(), size_t(n), peer, 8, x);
        comm.wait(x, "ping-pong");
      } else {
        x.clear();
        comm.irecv(rbuf.data(), size_t(n), peer, 8, x);
        comm.wait(x, "ping-pong");
        x.clear();
        comm.isend(sbuf.data(), size_t(n), peer, 8, x);
        comm.wait(x, "ping-pong");
      }
    }
    return (now_seconds() - t0) / iters;
  };
  for (int64_t n : sizes) sample(n, true), sample(n, false);  // warm up (connections, pages)
  // Samples interleaved over the sizes, so that a burst of a neighbour's load on this shared
  // machine spreads over all sizes instead of spoiling one.
  std::vector<std::vector<double>> a(sizes.size()), b(sizes.size());
  for (int s = 0; s < (smoke ? 3 : 9); ++s)
    for (size_t i = 0; i < sizes.size(); ++i) {
      a[i].push_back(sample(sizes[i], true) / 2);
      b[i].push_back(sample(sizes[i], false) / 2);
    }
  for (size_t i = 0; i < sizes.size(); ++i) out.push_back({sizes[i], bench::median(a[i]), bench::median(b[i])});
  return out;
}

// ---- 2. dispatch and combine ----

// One (mode, payload, T) measurement, reduced over ranks and calls (on rank 0).
struct MoeRow {
  std::string mode, payload;
  int64_t T = 0;
  double begin_s = 0, finish_s = 0, layer_s = 0, wait_s = 0, wait_min_s = 0;  // finish_s: compute() + finish()
  double compute_s = 0;                          // this rank's own work after begin(), waits taken out
  double dispatch_s = 0, dispatch_min_s = 0;     // begin() + the dispatch wait; mean over ranks, and least
  double combine_s = 0, combine_min_s = 0;       // the combine wait; mean over ranks, and least
  double dispatch_bytes = 0, combine_bytes = 0;  // per rank per layer (mean over ranks)
  // Sums over ranks per layer: for the bytes-per-token comparison.
  double group_dispatch_bytes = 0, group_combine_bytes = 0, group_copies = 0, group_tokens = 0;
  double gbps = 0, gbps_min = 0;  // (dispatch + combine) bytes per rank over the mean wait, and the least
  double dispatch_gbps = 0, dispatch_gbps_min = 0, combine_gbps = 0, combine_gbps_min = 0;
};

MoeRow measure(parallel::Communicator& comm, parallel::ExpertParallelMoe& ep, const model::ModelConfig& cfg,
               int layer, int64_t T, int reps, bool smoke) {
  const int N = comm.size();
  const testing::RoutedTokens tok = testing::random_routed_tokens(cfg, T, uint64_t(comm.rank()) * 1000003 + uint64_t(T));
  const model::MoeInput in{layer, 0, 0, tok.x.data(), tok.ids.data(), tok.w.data(), T, int(cfg.num_experts_per_tok)};
  std::vector<float> out(static_cast<size_t>(T * cfg.hidden_size), 0.0f);
  for (int w = 0; w < (smoke ? 1 : 2); ++w) {  // warm up: buffers grown, pages touched
    tight_barrier(comm);
    ep.run(in, out.data());
  }
  // Per call: this rank's begin, compute + finish, waits, bytes and copies. compute() holds the
  // dispatch wait only and finish() the combine wait only (low latency's result sends included).
  std::vector<double> b(static_cast<size_t>(reps)), f(b), wt(b), dw(b), cw(b), db(b), cb(b), copies(b);
  for (int r = 0; r < reps; ++r) {
    tight_barrier(comm);
    const parallel::DispatchStats s0 = ep.stats();
    const double t0 = now_seconds();
    ep.begin(in);
    const double t1 = now_seconds();
    ep.compute(0);
    const parallel::DispatchStats sc = ep.stats();
    ep.finish(0, out.data());
    const double t2 = now_seconds();
    const parallel::DispatchStats s1 = ep.stats();
    b[size_t(r)] = t1 - t0;
    f[size_t(r)] = t2 - t1;
    wt[size_t(r)] = s1.wait_seconds - s0.wait_seconds;
    dw[size_t(r)] = sc.wait_seconds - s0.wait_seconds;
    cw[size_t(r)] = s1.wait_seconds - sc.wait_seconds;
    db[size_t(r)] = double(s1.dispatch_bytes_sent - s0.dispatch_bytes_sent);
    cb[size_t(r)] = double(s1.combine_bytes_sent - s0.combine_bytes_sent);
    copies[size_t(r)] = double(s1.tokens_sent - s0.tokens_sent);
  }
  std::vector<double> layer_s(b.size()), disp(b.size()), own(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    layer_s[i] = b[i] + f[i];
    disp[i] = b[i] + dw[i];
    own[i] = f[i] - wt[i];
  }
  const std::vector<double> sb = allreduce(comm, b, MPI_SUM), sf = allreduce(comm, f, MPI_SUM),
                            sw = allreduce(comm, wt, MPI_SUM), minw = allreduce(comm, wt, MPI_MIN),
                            sdisp = allreduce(comm, disp, MPI_SUM), mindisp = allreduce(comm, disp, MPI_MIN),
                            scw = allreduce(comm, cw, MPI_SUM), mincw = allreduce(comm, cw, MPI_MIN),
                            sown = allreduce(comm, own, MPI_SUM),
                            sdb = allreduce(comm, db, MPI_SUM), scb = allreduce(comm, cb, MPI_SUM),
                            sc = allreduce(comm, copies, MPI_SUM), maxl = allreduce(comm, layer_s, MPI_MAX);
  auto mean_median = [&](const std::vector<double>& sum) {
    std::vector<double> v(sum);
    for (double& x : v) x /= N;
    return bench::median(v);
  };
  MoeRow row;
  row.T = T;
  row.begin_s = mean_median(sb);
  row.finish_s = mean_median(sf);
  row.wait_s = mean_median(sw);
  row.wait_min_s = bench::median(minw);
  row.layer_s = bench::median(maxl);
  row.dispatch_bytes = mean_median(sdb);
  row.combine_bytes = mean_median(scb);
  row.group_dispatch_bytes = bench::median(sdb);
  row.group_combine_bytes = bench::median(scb);
  row.group_copies = bench::median(sc);
  row.group_tokens = double(T) * N;
  row.gbps = row.wait_s > 0 ? (row.dispatch_bytes + row.combine_bytes) / row.wait_s / 1e9 : 0;
  row.gbps_min = row.wait_min_s > 0 ? (row.dispatch_bytes + row.combine_bytes) / row.wait_min_s / 1e9 : 0;
  row.compute_s = mean_median(sown);
  row.dispatch_s = mean_median(sdisp);
  row.dispatch_min_s = bench::median(mindisp);
  row.combine_s = mean_median(scw);
  row.combine_min_s = bench::median(mincw);
  auto gbps = [](double bytes, double s) { return s > 0 ? bytes / s / 1e9 : 0; };
  row.dispatch_gbps = gbps(row.dispatch_bytes, row.dispatch_s);
  row.dispatch_gbps_min = gbps(row.dispatch_bytes, row.dispatch_min_s);
  row.combine_gbps = gbps(row.combine_bytes, row.combine_s);
  row.combine_gbps_min = gbps(row.combine_bytes, row.combine_min_s);
  return row;
}

std::string scratch_dir(const char* payload, int rank) {
  return (std::filesystem::temp_directory_path() /
          ("dsinfer-ep-bench-" + std::string(payload) + "-r" + std::to_string(rank) + "-" + std::to_string(::getpid())))
      .string();
}

// ---- 3. bytes per token ----

// What ours and DeepEP (plan/comm_model.cpp) put on the wire per token, counting only copies to
// other ranks on both sides so that the columns compare:
//   normal dispatch  ours: one record per (token, remote rank touched) = payload [+ FP8 scales]
//                    + top_k int32 local slot ids, padded to 8 bytes (the record, measured);
//                    DeepEP: one copy per (token, rank touched) = payload [+ scales]
//                    (comm_model's dispatch_bytes_per_token), expected_ranks_per_token copies.
//   normal combine   ours: one BF16 row per (token, remote expert) = top_k (N-1)/N rows, so the
//                    token's rank adds them in slot order (bit-identical to one process);
//                    DeepEP: one BF16 partial sum per (token, rank touched), the same copies as
//                    its dispatch (comm_model's combine_bytes_per_token per copy).
//   low latency      both: one row per (token, expert), dispatch payload [+ scales], combine
//                    BF16; comm_model counts all top_k pairs, the remote ones are (N-1)/N of them.
struct BytesRow {
  std::string mode, payload;
  double ours_copy, model_copy;           // dispatch bytes per copy
  double ours_copies, model_copies;       // remote copies per token
  double ours_dispatch, model_dispatch;   // dispatch bytes per token
  double ours_combine_rows;               // combine rows per token
  double ours_combine, model_combine;     // combine bytes per token
};

BytesRow bytes_per_token(const MoeRow& m, const model::ModelConfig& cfg, int N) {
  BytesRow r;
  r.mode = m.mode;
  r.payload = m.payload;
  const double remote = double(N - 1) / N, K = double(cfg.num_experts_per_tok);
  r.ours_copy = m.group_copies > 0 ? m.group_dispatch_bytes / m.group_copies : 0;
  r.ours_copies = m.group_copies / m.group_tokens;
  r.ours_dispatch = m.group_dispatch_bytes / m.group_tokens;
  r.ours_combine = m.group_combine_bytes / m.group_tokens;
  r.ours_combine_rows = r.ours_combine / double(2 * cfg.hidden_size);
  r.model_copy = plan::dispatch_bytes_per_token(cfg);
  r.model_copies = (m.mode == "normal" ? plan::expected_ranks_per_token(cfg, N) : K) * remote;
  r.model_dispatch = r.model_copies * r.model_copy;
  r.model_combine = r.model_copies * plan::combine_bytes_per_token(cfg);
  return r;
}

double ratio(double a, double b) { return b > 0 ? a / b : 0; }

// ---- 4. model steps, one vs two micro-batches ----

// ExpertParallelMoe as the model's executor, with the dispatch/combine waits of each call kept
// apart: the wait inside compute() is the dispatch's, the one inside finish() the combine's, so
// the profile's "moe.experts" and "moe.combine" totals can be split into compute and wait.
class TimedExecutor final : public model::MoeExecutor {
 public:
  explicit TimedExecutor(parallel::ExpertParallelMoe& ep) : ep_(ep) {}
  void prepare(const model::ModelWeights& w, const std::function<void(const model::MlpWeights&)>& packed) override {
    ep_.prepare(w, packed);
  }
  void begin(const model::MoeInput& in) override {
    const double w0 = ep_.stats().wait_seconds;
    ep_.begin(in);
    begin_wait += ep_.stats().wait_seconds - w0;
  }
  void compute(int mb) override {
    const double w0 = ep_.stats().wait_seconds;
    ep_.compute(mb);
    compute_wait += ep_.stats().wait_seconds - w0;
  }
  void finish(int mb, float* out) override {
    const double w0 = ep_.stats().wait_seconds;
    ep_.finish(mb, out);
    finish_wait += ep_.stats().wait_seconds - w0;
  }
  void progress() override { ep_.progress(); }
  parallel::DispatchStats stats() const { return ep_.stats(); }
  double begin_wait = 0, compute_wait = 0, finish_wait = 0;

 private:
  parallel::ExpertParallelMoe& ep_;
};

// This rank's counters at one instant: the executor's, its per-call waits, the profile's totals.
struct StepCounters {
  parallel::DispatchStats stats;
  double begin_wait = 0, compute_wait = 0, finish_wait = 0;
  double attention = 0, route = 0, dispatch = 0, experts = 0, shared = 0, combine = 0, dense = 0;

  static StepCounters now(const TimedExecutor& ex) {
    StepCounters c;
    c.stats = ex.stats();
    c.begin_wait = ex.begin_wait;
    c.compute_wait = ex.compute_wait;
    c.finish_wait = ex.finish_wait;
    c.attention = profile_total("attention").seconds;
    c.route = profile_total("moe.route").seconds;
    c.dispatch = profile_total("moe.dispatch").seconds;
    c.experts = profile_total("moe.experts").seconds;
    c.shared = profile_total("moe.shared").seconds;
    c.combine = profile_total("moe.combine").seconds;
    c.dense = profile_total("dense_mlp").seconds;
    return c;
  }
};

// One step of one rank, from the counters around it: the wall time, the exposed communication
// (wait_seconds + layout_seconds deltas) and the compute seconds of each stage with the waits
// taken out (the dispatch post without the count exchange; the experts without the dispatch wait;
// the combine finish without the combine wait); "other" is the rest of the step (norms, residual
// adds, embedding, LM head, the micro-batch split).
struct StepSample {
  double step = 0, exposed = 0, dispatch_bytes = 0, combine_bytes = 0;
  plan::StageSeconds stages;
  bool normal = false;
};

StepSample sample_step(const StepCounters& a, const StepCounters& b, double seconds) {
  StepSample s;
  s.step = seconds;
  const double layout = b.stats.layout_seconds - a.stats.layout_seconds;
  s.exposed = b.stats.wait_seconds - a.stats.wait_seconds + layout;
  s.dispatch_bytes = double(b.stats.dispatch_bytes_sent - a.stats.dispatch_bytes_sent);
  s.combine_bytes = double(b.stats.combine_bytes_sent - a.stats.combine_bytes_sent);
  s.normal = b.stats.normal_layers > a.stats.normal_layers;
  plan::StageSeconds& g = s.stages;
  g.attention = b.attention - a.attention;
  g.route = b.route - a.route;
  g.dispatch_post = std::max(0.0, b.dispatch - a.dispatch - layout - (b.begin_wait - a.begin_wait));
  g.experts = std::max(0.0, b.experts - a.experts - (b.compute_wait - a.compute_wait));
  g.shared = b.shared - a.shared;
  g.combine_finish = std::max(0.0, b.combine - a.combine - (b.finish_wait - a.finish_wait));
  g.dense = b.dense - a.dense;
  g.other = std::max(0.0, seconds - s.exposed - g.total());
  return s;
}

// One (payload, phase, micro-batches) row, reduced over ranks and steps (on every rank).
struct ModelStepRow {
  std::string payload, phase;
  int micro_batches = 1;
  int64_t tokens = 0;
  plan::MeasuredStep measured;  // step = slowest rank, the rest means over ranks; medians over steps
  double exposed_min = 0;       // the rank that waited least (the others also wait out its compute)
};

// The stage columns in StageSeconds' order, for the reductions.
constexpr double plan::StageSeconds::*kStages[] = {
    &plan::StageSeconds::attention, &plan::StageSeconds::route,          &plan::StageSeconds::dispatch_post,
    &plan::StageSeconds::experts,   &plan::StageSeconds::shared,         &plan::StageSeconds::combine_finish,
    &plan::StageSeconds::dense,     &plan::StageSeconds::other};

// Steps of `batch` with one and two micro-batches, interleaved step by step so that a burst of a
// neighbour's load on this shared machine spreads over both; every rank steps in lockstep (a
// barrier before each step).
std::vector<ModelStepRow> measure_steps(parallel::Communicator& comm, model::DeepSeekModel& model, TimedExecutor& ex,
                                        const model::Batch& batch, const kernels::KvCacheView& cache,
                                        const char* phase, const char* payload, int reps, bool smoke) {
  const int N = comm.size();
  std::vector<float> logits(batch.logits_rows.size() * size_t(model.config().vocab_size));
  for (int w = 0; w < (smoke ? 1 : 2); ++w)  // warm up: buffers grown, pages touched, both schedules
    for (int mb = 1; mb <= 2; ++mb) {
      model.set_micro_batches(mb);
      tight_barrier(comm);
      model.forward(batch, cache, logits.data());
    }
  std::vector<StepSample> samples[2];
  for (int r = 0; r < reps; ++r)
    for (int mb = 1; mb <= 2; ++mb) {
      model.set_micro_batches(mb);
      tight_barrier(comm);
      const StepCounters a = StepCounters::now(ex);
      const double t0 = now_seconds();
      model.forward(batch, cache, logits.data());
      const double t1 = now_seconds();
      samples[mb - 1].push_back(sample_step(a, StepCounters::now(ex), t1 - t0));
    }
  std::vector<ModelStepRow> rows;
  for (int mb = 1; mb <= 2; ++mb) {
    const std::vector<StepSample>& v = samples[mb - 1];
    auto column = [&](auto get, MPI_Op op) {
      std::vector<double> c;
      for (const StepSample& s : v) c.push_back(get(s));
      c = allreduce(comm, c, op);
      if (op == MPI_SUM)
        for (double& x : c) x /= N;
      return bench::median(c);
    };
    ModelStepRow row;
    row.payload = payload;
    row.phase = phase;
    row.micro_batches = mb;
    row.tokens = int64_t(batch.tokens.size());
    plan::MeasuredStep& m = row.measured;
    m.phase = phase;
    m.payload = payload;
    m.micro_batches = mb;
    m.tokens_per_rank = row.tokens;
    m.normal_mode = v.front().normal;
    m.measured_step_s = column([](const StepSample& s) { return s.step; }, MPI_MAX);
    m.measured_exposed_s = column([](const StepSample& s) { return s.exposed; }, MPI_SUM);
    row.exposed_min = column([](const StepSample& s) { return s.exposed; }, MPI_MIN);
    m.dispatch_bytes = column([](const StepSample& s) { return s.dispatch_bytes; }, MPI_SUM);
    m.combine_bytes = column([](const StepSample& s) { return s.combine_bytes; }, MPI_SUM);
    for (auto member : kStages)
      m.stages.*member = column([&](const StepSample& s) { return s.stages.*member; }, MPI_SUM);
    rows.push_back(row);
  }
  return rows;
}

// Section 4 on one checkpoint: a DeepSeekModel with an ExpertParallelMoe executor over the world
// group and a latent pool (zeros: only the timing matters), decode and prefill steps.
std::vector<ModelStepRow> model_steps(parallel::Communicator& comm, const std::string& dir, bool fp8,
                                      const Options& o) {
  const int N = comm.size();
  const model::ModelConfig cfg = model::load_config(dir + "/config.json");
  parallel::ExpertParallelOptions epo;
  epo.activations = fp8 ? model::ExpertActivations::kFp8 : model::ExpertActivations::kBf16;
  epo.mode = parallel::DispatchMode::kAuto;  // low latency for decode, normal for prefill
  parallel::ExpertParallelMoe ep(comm, parallel::ExpertPlacement::contiguous(cfg, N), cfg, epo);
  TimedExecutor ex(ep);
  model::ModelOptions mo;
  mo.expert_activations = epo.activations;
  mo.executor = &ex;
  mo.check_weights = false;
  model::DeepSeekModel model(cfg, model::Checkpoint::open(dir), mo);

  const int64_t decode_seqs = o.smoke ? 4 : 32, decode_cached = o.smoke ? 64 : 256;
  const int64_t prefill_seqs = o.smoke ? 2 : 4, prefill_tokens = o.smoke ? 16 : 256;
  const kernels::KvCacheSpec spec = model.cache_spec();
  const int64_t per_decode = (decode_cached + 1 + spec.block_size - 1) / spec.block_size;
  const int64_t per_prefill = (prefill_tokens + spec.block_size - 1) / spec.block_size;
  cache::KvPool pool(spec, decode_seqs * per_decode + prefill_seqs * per_prefill);
  const kernels::KvCacheView view = pool.view();
  std::mt19937 rng(uint32_t(17 + comm.rank()));
  std::uniform_int_distribution<int32_t> token(0, int32_t(cfg.vocab_size - 1));
  std::vector<int32_t> ids(static_cast<size_t>(std::max(decode_seqs, prefill_seqs * prefill_tokens)));
  for (int32_t& t : ids) t = token(rng);
  // Block tables, reserved up front: Batch keeps pointers into them.
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(decode_seqs + prefill_seqs));
  model::Batch decode, prefill;
  for (int64_t s = 0; s < decode_seqs; ++s) {
    std::vector<int32_t>& t = tables[size_t(s)];
    check(pool.allocate(per_decode, t), "ep_bench: the KV pool is too small");
    decode.add(ids.data() + s, 1, decode_cached, t.data(), model::Batch::Logits::kLast, true);
  }
  for (int64_t s = 0; s < prefill_seqs; ++s) {
    std::vector<int32_t>& t = tables[size_t(decode_seqs + s)];
    check(pool.allocate(per_prefill, t), "ep_bench: the KV pool is too small");
    prefill.add(ids.data() + s * prefill_tokens, prefill_tokens, 0, t.data(), model::Batch::Logits::kLast, false);
  }
  const char* payload = fp8 ? "fp8" : "bf16";
  std::vector<ModelStepRow> rows = measure_steps(comm, model, ex, decode, view, "decode", payload, o.step_reps, o.smoke);
  for (ModelStepRow& r : measure_steps(comm, model, ex, prefill, view, "prefill", payload, o.step_reps, o.smoke))
    rows.push_back(std::move(r));
  return rows;
}

int run(parallel::Communicator& comm, const Options& o) {
  const bool root = comm.is_root();
  const int N = comm.size();
  auto say = [&](const char* fmt, auto... args) {
    if (root && !o.json) {
      std::printf(fmt, args...);
      std::fflush(stdout);
    }
  };
  auto emit = [&](nlohmann::json j) {
    if (root && o.json) {
      j["bench"] = "ep_bench";
      j["ranks"] = N;
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    }
  };

  // Machine limits: rank 0's share of the cores (the others sleep meanwhile).
  bench::MachineLimits lim;
  if (root) lim = bench::measure_machine_limits(o.smoke ? (size_t(64) << 20) : (size_t(1) << 30), o.smoke ? 3 : 7);
  idle_barrier(comm, "machine limits");
  say("%s (rank 0's share of the cores)\n", bench::describe(lim).c_str());
  say("ranks: %d (%s), %d thread(s) per rank\n", N, comm.uses_mpi() ? "mpirun" : "alone, no MPI",
      std::getenv("DSINFER_THREADS") ? std::atoi(std::getenv("DSINFER_THREADS")) : int(std::thread::hardware_concurrency()));
  emit({{"section", "machine"}, {"threads", lim.threads}, {"isa", lim.isa}, {"stream_read_gbps", lim.stream_read_gbps},
        {"fma_fp32_gflops", lim.fma_fp32_gflops}});

  // 1. MPI point to point.
  double p2p_gbps = 0, p2p_latency_s = 0;
  if (N > 1) {
    std::vector<P2p> p = ping_pong(comm, o.smoke);
    idle_barrier(comm, "ping-pong");
    say("\n== MPI point to point, rank 0 <-> rank 1 ping-pong (one way = round trip / 2, median of %d)\n",
        o.smoke ? 3 : 9);
    say("%10s  %14s %10s  %18s %10s\n", "bytes", "MPI_Send/Recv", "GB/s", "Communicator wait", "GB/s");
    std::vector<double> big;
    for (const P2p& r : p) {
      const double g1 = double(r.bytes) / r.mpi_oneway_s / 1e9, g2 = double(r.bytes) / r.comm_oneway_s / 1e9;
      if (r.bytes >= (1 << 20)) big.push_back(g1);
      say("%10ld  %11.2f us %10.3f  %15.2f us %10.3f\n", long(r.bytes), r.mpi_oneway_s * 1e6, g1, r.comm_oneway_s * 1e6, g2);
      emit({{"section", "p2p"}, {"bytes", r.bytes}, {"mpi_oneway_us", r.mpi_oneway_s * 1e6}, {"mpi_gbps", g1},
            {"communicator_oneway_us", r.comm_oneway_s * 1e6}, {"communicator_gbps", g2}});
    }
    p2p_gbps = bench::median(big);
    if (!p.empty()) p2p_latency_s = p.front().mpi_oneway_s;
    if (root && !p.empty())
      say("small-message latency %.2f us one way (MPI), %.2f us (Communicator); %.2f GB/s at >= 1 MB (MPI, median) "
          "= %.0f%% of streaming read\n",
          p.front().mpi_oneway_s * 1e6, p.front().comm_oneway_s * 1e6, p2p_gbps,
          100 * p2p_gbps / lim.stream_read_gbps);
    emit({{"section", "p2p_summary"}, {"latency_us", root && !p.empty() ? p.front().mpi_oneway_s * 1e6 : 0},
          {"p2p_gbps", p2p_gbps}});
  }

  // 2. Dispatch and combine.
  model::ModelConfig small = model::preset_config("bench-v3-small");
  // Layer 0 dense, the others MoE: section 2 times the first MoE layer, section 4 the whole model.
  small.num_hidden_layers = o.smoke ? 2 : 4;
  small.vocab_size = 2048;
  if (o.smoke) {  // a quicker checkpoint to write; the messages (hidden, experts, top-k) are unchanged
    small.moe_intermediate_size = 128;
    small.intermediate_size = 512;
  }
  const int64_t capacity = 128;
  std::vector<int64_t> Ts;
  for (int64_t t = 1; t <= 2048; t *= 2) Ts.push_back(t);
  if (o.smoke) Ts = {1, 32};
  if (!o.tokens.empty()) Ts = o.tokens;
  say("\n== dispatch + combine, ExpertParallelMoe, bench-v3-small (hidden %ld, %ld experts, top-%ld) with %d rank(s), "
      "one MoE layer per call, median of %d calls%s\n",
      long(small.hidden_size), long(small.n_routed_experts), long(small.num_experts_per_tok), N, o.reps,
      o.smoke ? " (smoke: expert width cut to 128)" : "");
  say("   T = tokens per rank; layer = the slowest rank's whole call (begin + compute + finish); compute = this rank's "
      "own work after begin\n   (expert GEMMs, encoding, sums), waits taken out, mean over ranks;\n"
      "   dispatch = begin() (encode, layout, count exchange, post) + the dispatch wait; combine = the combine wait "
      "(from the results' post\n   until all are back); both mean over ranks, and min = the rank with the least (the "
      "others also wait out a slower peer, for combine its GEMMs);\n   KB = sent to other ranks per rank per layer; "
      "GB/s = KB / time, and / min time; MPI's p2p GB/s is above\n");
  say("%-11s %-7s %5s %10s %10s | %9s %9s %9s %7s %7s | %9s %9s %9s %7s %7s\n", "mode", "payload", "T", "layer us",
      "compute us", "disp us", "min", "disp KB", "GB/s", "@min", "comb us", "min", "comb KB", "GB/s", "@min");
  std::vector<std::pair<BytesRow, MoeRow>> largest;
  std::vector<ModelStepRow> steps;  // section 4, printed after section 3
  for (const bool fp8 : {false, true}) {
    const char* payload = fp8 ? "fp8" : "bf16";
    const std::string dir = scratch_dir(payload, comm.rank());
    model::RandomCheckpointOptions copt;
    copt.fp8 = fp8;
    copt.seed = 11;
    const double w0 = now_seconds();
    model::write_random_checkpoint(small, dir, copt);
    const double written = now_seconds() - w0;
    {
      const model::ModelConfig cfg = model::load_config(dir + "/config.json");
      const model::Checkpoint ckpt = model::Checkpoint::open(dir);
      const model::ModelWeights weights = model::ModelWeights::load(ckpt, cfg);
      const parallel::ExpertPlacement placement = parallel::ExpertPlacement::contiguous(cfg, N);
      int layer = -1;
      for (int64_t l = 0; l < cfg.num_hidden_layers && layer < 0; ++l)
        if (cfg.is_moe_layer(l)) layer = int(l);
      check(layer >= 0, "ep_bench: the model has no MoE layer");
      for (const parallel::DispatchMode mode : {parallel::DispatchMode::kNormal, parallel::DispatchMode::kLowLatency}) {
        parallel::ExpertParallelOptions opt;
        opt.activations = fp8 ? model::ExpertActivations::kFp8 : model::ExpertActivations::kBf16;
        opt.mode = mode;
        opt.low_latency_tokens = capacity;
        parallel::ExpertParallelMoe ep(comm, placement, cfg, opt);
        ep.prepare(weights, nullptr);
        check(ep.dispatch_row_bytes(layer) == (fp8 ? cfg.hidden_size + cfg.hidden_size / 128 * 4 : 2 * cfg.hidden_size),
              "ep_bench: unexpected ", payload, " payload of ", ep.dispatch_row_bytes(layer), " bytes");
        const bool ll = mode == parallel::DispatchMode::kLowLatency;
        MoeRow last;
        for (int64_t T : Ts) {
          if (ll && T > capacity) continue;
          MoeRow r = measure(comm, ep, cfg, layer, T, o.reps, o.smoke);
          r.mode = ll ? "low-latency" : "normal";
          r.payload = payload;
          auto gb = [&](double v) {
            char t[32] = "n/a";
            if (N > 1) std::snprintf(t, sizeof t, "%.3f", v);
            return std::string(t);
          };
          say("%-11s %-7s %5ld %10.1f %10.1f | %9.1f %9.1f %9.1f %7s %7s | %9.1f %9.1f %9.1f %7s %7s\n",
              r.mode.c_str(), payload, long(T), r.layer_s * 1e6, r.compute_s * 1e6, r.dispatch_s * 1e6,
              r.dispatch_min_s * 1e6, r.dispatch_bytes / 1e3, gb(r.dispatch_gbps).c_str(),
              gb(r.dispatch_gbps_min).c_str(), r.combine_s * 1e6, r.combine_min_s * 1e6, r.combine_bytes / 1e3,
              gb(r.combine_gbps).c_str(), gb(r.combine_gbps_min).c_str());
          emit({{"section", "moe"}, {"mode", r.mode}, {"payload", payload}, {"tokens_per_rank", T}, {"reps", o.reps},
                {"comm_time", "wait_seconds"}, {"begin_us", r.begin_s * 1e6}, {"finish_us", r.finish_s * 1e6},
                {"layer_us", r.layer_s * 1e6}, {"comm_us", r.wait_s * 1e6}, {"comm_min_rank_us", r.wait_min_s * 1e6},
                {"compute_us", r.compute_s * 1e6}, {"dispatch_us", r.dispatch_s * 1e6},
                {"dispatch_min_rank_us", r.dispatch_min_s * 1e6}, {"combine_us", r.combine_s * 1e6},
                {"combine_min_rank_us", r.combine_min_s * 1e6}, {"dispatch_gbps", r.dispatch_gbps},
                {"dispatch_min_rank_gbps", r.dispatch_gbps_min}, {"combine_gbps", r.combine_gbps},
                {"combine_min_rank_gbps", r.combine_gbps_min}, {"dispatch_bytes_per_rank", r.dispatch_bytes},
                {"combine_bytes_per_rank", r.combine_bytes}, {"comm_gbps", r.gbps}, {"comm_min_rank_gbps", r.gbps_min},
                {"p2p_gbps", p2p_gbps}, {"ratio_to_p2p", ratio(r.gbps, p2p_gbps)},
                {"min_rank_ratio_to_p2p", ratio(r.gbps_min, p2p_gbps)}});
          last = r;
        }
        if (N > 1) largest.emplace_back(bytes_per_token(last, cfg, N), last);
      }
    }
    if (o.steps)
      for (ModelStepRow& r : model_steps(comm, dir, fp8, o)) steps.push_back(std::move(r));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    say("   (%s checkpoint: written in %.1f s per rank, removed)\n", payload, written);
  }

  // 3. Bytes per token.
  if (N > 1) {
    say("\n== bytes per token (from T = %ld per rank), ours measured vs plan/comm_model.cpp (DeepEP's message sizes); "
        "copies to other ranks only, on both sides\n",
        long(Ts.back()));
    say("   normal: a copy is a (token, remote rank) record; ours = payload [+ FP8 scales] + top_k int32 slot ids, "
        "padded to 8 B; DeepEP = payload [+ scales]\n"
        "           combine: ours returns top_k (N-1)/N BF16 rows per token (one per remote expert, bit-identical "
        "sums); DeepEP one BF16 partial per remote rank touched\n"
        "   low-latency: a copy is a (token, remote expert) row, for both; comm_model counts all top_k pairs, "
        "(N-1)/N of them remote\n");
    say("%-11s %-7s %9s %9s %6s  %8s %8s  %10s %10s %6s  %9s %10s %10s %6s\n", "mode", "payload", "B/copy", "DeepEP",
        "ratio", "copies", "model", "disp B/tok", "model", "ratio", "comb rows", "comb B/tok", "model", "ratio");
    for (const auto& [b, m] : largest) {
      say("%-11s %-7s %9.0f %9.0f %6.3f  %8.3f %8.3f  %10.0f %10.0f %6.3f  %9.3f %10.0f %10.0f %6.3f\n", b.mode.c_str(),
          b.payload.c_str(), b.ours_copy, b.model_copy, ratio(b.ours_copy, b.model_copy), b.ours_copies, b.model_copies,
          b.ours_dispatch, b.model_dispatch, ratio(b.ours_dispatch, b.model_dispatch), b.ours_combine_rows,
          b.ours_combine, b.model_combine, ratio(b.ours_combine, b.model_combine));
      emit({{"section", "bytes_per_token"}, {"mode", b.mode}, {"payload", b.payload}, {"tokens_per_rank", m.T},
            {"dispatch_bytes_per_copy", b.ours_copy}, {"model_dispatch_bytes_per_copy", b.model_copy},
            {"remote_copies_per_token", b.ours_copies}, {"model_remote_copies_per_token", b.model_copies},
            {"dispatch_bytes_per_token", b.ours_dispatch}, {"model_dispatch_bytes_per_token", b.model_dispatch},
            {"combine_rows_per_token", b.ours_combine_rows}, {"combine_bytes_per_token", b.ours_combine},
            {"model_combine_bytes_per_token", b.model_combine}});
    }
    // The formula at DeepSeek-V3's width, against DeepEP's published sizes (FP8 dispatch: 7168
    // e4m3 + 56 fp32 scales per token copy; BF16 combine: 14 KB).
    model::ModelConfig v3 = model::preset_config("bench-v3-small");
    v3.hidden_size = 7168;
    v3.quant = model::QuantConfig{};
    say("   comm_model at V3's hidden 7168 (FP8): dispatch %.0f B per token copy (7168 e4m3 + 56 x 4 B scales), "
        "combine %.0f B (BF16): DeepEP's sizes\n",
        plan::dispatch_bytes_per_token(v3), plan::combine_bytes_per_token(v3));
  } else {
    say("\n(one rank: nothing crosses a wire, no bytes-per-token comparison)\n");
  }

  // 4. Model steps, one vs two micro-batches (--no-steps: sections 1-3 only).
  if (!o.steps) return 0;
  say("\n== model steps, one vs two micro-batches: bench-v3-small cut to %ld layers (1 dense + %ld MoE), %d rank(s), "
      "ExpertParallelMoe (low latency for decode, normal for prefill), median of %d steps%s\n",
      long(small.num_hidden_layers), long(small.num_hidden_layers - 1), N, o.step_reps,
      o.smoke ? " (smoke: expert width cut to 128)" : "");
  say("   decode: %d sequences per rank, one token each over %d cached tokens; prefill: %d sequences of %d new tokens "
      "per rank\n",
      o.smoke ? 4 : 32, o.smoke ? 64 : 256, o.smoke ? 2 : 4, o.smoke ? 16 : 256);
  say("   step = the slowest rank's forward; exposed = blocked in dispatch/combine waits + normal mode's count "
      "exchange (wait_seconds + layout_seconds), mean over ranks;\n   min = the exposed time of the rank that "
      "waited least (the others also wait out a slower peer), the closest to pure transfer;\n   stage columns (ms, "
      "mean over ranks, waits taken out): attn = attention, route = gate, post = dispatch post, experts = this "
      "rank's routed experts,\n   shared, finish = combine finish, dense = dense MLP, other = the rest (norms, "
      "residuals, embedding, LM head); KB = sent to other ranks per rank per step;\n   on/off = step(2) / step(1); "
      "hidden = 1 - exposed(2) / exposed(1)\n");
  say("%-7s %-8s %2s %6s %9s %9s %7s %7s %7s %7s %8s %7s %7s %7s %7s %9s %7s %7s\n", "payload", "phase", "mb",
      "tokens", "step ms", "exposed", "min", "attn", "route", "post", "experts", "shared", "finish", "dense", "other",
      "KB", "on/off", "hidden");
  plan::StageCosts costs;
  costs.source = "ep_bench";
  costs.model = o.smoke ? "bench-v3-small (smoke: expert width 128)" : "bench-v3-small";
  costs.ranks = N;
  costs.layers = int(small.num_hidden_layers);
  costs.moe_layers = int(small.num_hidden_layers - small.first_k_dense_replace);
  costs.network = {p2p_latency_s, p2p_gbps * 1e9};
  for (const ModelStepRow& r : steps) {
    const plan::MeasuredStep& m = r.measured;
    const plan::StageSeconds& g = m.stages;
    const plan::MeasuredStep* one = nullptr;
    for (const ModelStepRow& q : steps)
      if (q.micro_batches == 1 && q.phase == r.phase && q.payload == r.payload) one = &q.measured;
    const bool two = r.micro_batches == 2 && one;
    const double on_off = two ? ratio(m.measured_step_s, one->measured_step_s) : 0;
    const double hidden = two && one->measured_exposed_s > 0 ? 1 - m.measured_exposed_s / one->measured_exposed_s : 0;
    char c1[32] = "", c2[32] = "";
    if (two) {
      std::snprintf(c1, sizeof c1, "%.3f", on_off);
      if (N > 1) std::snprintf(c2, sizeof c2, "%.1f%%", 100 * hidden);
      else std::snprintf(c2, sizeof c2, "n/a");  // nothing to hide: one rank waits on nobody
    }
    say("%-7s %-8s %2d %6ld %9.3f %9.3f %7.3f %7.3f %7.3f %7.3f %8.3f %7.3f %7.3f %7.3f %7.3f %9.1f %7s %7s\n",
        r.payload.c_str(), r.phase.c_str(), r.micro_batches, long(r.tokens), m.measured_step_s * 1e3,
        m.measured_exposed_s * 1e3, r.exposed_min * 1e3, g.attention * 1e3, g.route * 1e3, g.dispatch_post * 1e3, g.experts * 1e3,
        g.shared * 1e3, g.combine_finish * 1e3, g.dense * 1e3, g.other * 1e3,
        (m.dispatch_bytes + m.combine_bytes) / 1e3, c1, c2);
    nlohmann::json j = {{"section", "model_step"},
                        {"payload", r.payload},
                        {"phase", r.phase},
                        {"micro_batches", r.micro_batches},
                        {"tokens_per_rank", r.tokens},
                        {"dispatch_mode", m.normal_mode ? "normal" : "low-latency"},
                        {"steps", o.step_reps},
                        {"step_ms", m.measured_step_s * 1e3},
                        {"exposed_comm_ms", m.measured_exposed_s * 1e3},
                        {"exposed_comm_min_rank_ms", r.exposed_min * 1e3},
                        {"dispatch_bytes_per_rank", m.dispatch_bytes},
                        {"combine_bytes_per_rank", m.combine_bytes}};
    nlohmann::json stages = nlohmann::json::object();
    const char* names[] = {"attention", "route",          "dispatch_post", "experts",
                           "shared",    "combine_finish", "dense",         "other"};
    for (size_t i = 0; i < std::size(kStages); ++i) stages[names[i]] = g.*kStages[i] * 1e3;
    j["stages_ms"] = stages;
    if (two) j["on_off"] = on_off;
    if (two && N > 1) j["hidden_fraction"] = hidden;
    emit(j);
    costs.steps.push_back(m);
  }
  if (!o.stage_costs.empty() && root) {
    std::FILE* f = std::fopen(o.stage_costs.c_str(), "w");
    check(f != nullptr, "ep_bench: cannot write ", o.stage_costs);
    const std::string text = plan::to_json(costs).dump(2) + "\n";
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    check(std::fclose(f) == 0 && ok, "ep_bench: cannot write ", o.stage_costs);
    say("   stage costs written to %s (dsinfer simulate --stage-costs %s)\n", o.stage_costs.c_str(),
        o.stage_costs.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  // Section 4 reads the per-stage totals of the model's profile scopes (base/profile.h), which
  // count only when DSINFER_PROFILE is set before the first scope; each rank then also prints its
  // totals to stderr when it exits.
  setenv("DSINFER_PROFILE", "1", 1);
  // The ranks on one machine share its cores, as `dsinfer` shares them under mpirun.
  if (parallel::launched_by_mpi() && !std::getenv("DSINFER_THREADS")) {
    const int share = std::max(1, int(std::thread::hardware_concurrency()) / parallel::local_ranks());
    setenv("DSINFER_THREADS", std::to_string(share).c_str(), 0);
  }
  parallel::MpiRuntime mpi;
  parallel::Communicator world = parallel::world_group();
  world.set_timeout(300);  // a rank that hangs fails the run instead of stalling it
  try {
    return run(world, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ep_bench: rank %d: %s\n", world.rank(), e.what());
    if (world.size() > 1) mpi.abort(1);
    return 1;
  }
}
