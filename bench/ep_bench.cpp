// Expert-parallel dispatch and combine (parallel::ExpertParallelMoe) under mpirun, beside MPI's
// own point-to-point latency and bandwidth between ranks 0 and 1 and this machine's limits, all
// measured in the same run:
//   mpirun --oversubscribe --bind-to none -np N ep_bench [--smoke] [--json] [--reps R]
// Alone (no mpirun) it is a group of one: no MPI, nothing crosses a wire, only the local work.
//
// Sections (only rank 0 prints; --json prints one JSON line per measurement instead of tables):
// 1. p2p: ping-pong between ranks 0 and 1, 8 B .. 4 MB, with MPI_Send/MPI_Recv (MPI's own best)
//    and with the Communicator's isend/irecv/wait (the polling, yielding wait the dispatch uses).
//    One-way time = round trip / 2; GB/s = bytes / one-way time. The p2p bandwidth the dispatch
//    is compared with is the median of MPI_Send/Recv's GB/s over the messages of 1 MB and more.
// 2. dispatch + combine of ExpertParallelMoe on bench-v3-small (hidden 1024, 64 experts, top-8)
//    cut to 2 layers (one dense, one MoE) and a 2048-token vocabulary, so each rank's random
//    checkpoint is ~220 MB (BF16) / ~110 MB (FP8) instead of GBs: neither cut changes a byte of
//    the dispatch (--smoke also cuts the experts' width to 128, T to {1, 32} and the calls to 3,
//    to run in seconds). T random tokens per rank, each routed to top_k distinct experts drawn
//    uniformly; normal mode for every T, low latency for T <= its capacity (128); BF16 payload
//    (BF16 checkpoint) and FP8 payload (FP8 checkpoint, FP8 dispatch). One call = one MoE layer.
//    begin() and finish() are timed separately; finish() also runs this rank's expert GEMMs, so
//    the communication time is the time blocked in the dispatch and combine waits
//    (DispatchStats::wait_seconds deltas). That wait includes waiting for a slower peer's GEMMs
//    (load skew); the rank that waited least in a call is the closest to pure transfer, so its
//    wait is printed too. Not in it: normal mode's count all-to-all, which begin() makes blocking.
//    Bytes are DispatchStats deltas (to other ranks only); GB/s = bytes sent per rank / comm time
//    (and / the least wait), beside MPI's p2p GB/s of section 1.
//    Every per-rank figure is the mean over ranks within one call, then the median over calls;
//    "layer" is the slowest rank's begin + finish of each call, median over calls.
// 3. bytes per token against plan/comm_model.cpp (DeepEP's counting), from the largest T.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/timer.h"
#include "machine_limits.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weights.h"
#include "parallel/expert_parallel_moe.h"
#include "parallel/mpi_runtime.h"
#include "plan/comm_model.h"
#include "routed_tokens.h"  // tests/support: the tests' synthetic routing

using namespace dsinfer;

namespace {

struct Options {
  bool smoke = false, json = false;
  int reps = 0;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--smoke") o.smoke = true;
    else if (a == "--json") o.json = true;
    else if (a == "--reps" && i + 1 < argc) o.reps = std::max(1, std::atoi(argv[++i]));
    else fail("ep_bench: unknown flag ", a, " (flags: --smoke --json --reps N)");
  }
  if (o.reps == 0) o.reps = o.smoke ? 3 : 20;
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
  double begin_s = 0, finish_s = 0, layer_s = 0, wait_s = 0, wait_min_s = 0;
  double dispatch_bytes = 0, combine_bytes = 0;  // per rank per layer (mean over ranks)
  // Sums over ranks per layer: for the bytes-per-token comparison.
  double group_dispatch_bytes = 0, group_combine_bytes = 0, group_copies = 0, group_tokens = 0;
  double gbps = 0, gbps_min = 0;  // bytes per rank over the mean wait, and over the least wait
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
  // Per call: this rank's begin, finish, wait, bytes and copies.
  std::vector<double> b(static_cast<size_t>(reps)), f(b), wt(b), db(b), cb(b), copies(b);
  for (int r = 0; r < reps; ++r) {
    tight_barrier(comm);
    const parallel::DispatchStats s0 = ep.stats();
    const double t0 = now_seconds();
    ep.begin(in);
    const double t1 = now_seconds();
    ep.compute(0);
    ep.finish(0, out.data());
    const double t2 = now_seconds();
    const parallel::DispatchStats s1 = ep.stats();
    b[size_t(r)] = t1 - t0;
    f[size_t(r)] = t2 - t1;
    wt[size_t(r)] = s1.wait_seconds - s0.wait_seconds;
    db[size_t(r)] = double(s1.dispatch_bytes_sent - s0.dispatch_bytes_sent);
    cb[size_t(r)] = double(s1.combine_bytes_sent - s0.combine_bytes_sent);
    copies[size_t(r)] = double(s1.tokens_sent - s0.tokens_sent);
  }
  std::vector<double> layer_s(b.size());
  for (size_t i = 0; i < b.size(); ++i) layer_s[i] = b[i] + f[i];
  const std::vector<double> sb = allreduce(comm, b, MPI_SUM), sf = allreduce(comm, f, MPI_SUM),
                            sw = allreduce(comm, wt, MPI_SUM), minw = allreduce(comm, wt, MPI_MIN),
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
  double p2p_gbps = 0;
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
  small.num_hidden_layers = 2;  // layer 0 dense, layer 1 MoE
  small.vocab_size = 2048;
  if (o.smoke) {  // a quicker checkpoint to write; the messages (hidden, experts, top-k) are unchanged
    small.moe_intermediate_size = 128;
    small.intermediate_size = 512;
  }
  const int64_t capacity = 128;
  std::vector<int64_t> Ts = {1, 8, 32, 128, 512, 2048};
  if (o.smoke) Ts = {1, 32};
  say("\n== dispatch + combine, ExpertParallelMoe, bench-v3-small (hidden %ld, %ld experts, top-%ld) with %d rank(s), "
      "one MoE layer per call, median of %d calls%s\n",
      long(small.hidden_size), long(small.n_routed_experts), long(small.num_experts_per_tok), N, o.reps,
      o.smoke ? " (smoke: expert width cut to 128)" : "");
  say("   T = tokens per rank; comm = time blocked in the dispatch + combine waits (DispatchStats::wait_seconds deltas), "
      "mean over ranks;\n   min wait = the rank that waited least (the others also wait out a peer's expert GEMMs); "
      "compute = finish - comm;\n   layer = the slowest rank's begin + finish; KB = sent to other ranks per rank per "
      "layer; GB/s = (dispatch + combine KB) / comm, and / min wait;\n   %% p2p = that GB/s over MPI's p2p GB/s above\n");
  say("%-11s %-7s %5s %9s %10s %10s %9s %9s %10s %11s %10s %7s %7s %6s %6s\n", "mode", "payload", "T", "begin us",
      "finish us", "layer us", "comm us", "min wait", "compute us", "dispatch KB", "combine KB", "GB/s", "@min",
      "% p2p", "@min");
  std::vector<std::pair<BytesRow, MoeRow>> largest;
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
          char gb[32] = "n/a", gbm[32] = "n/a", pc[32] = "n/a", pcm[32] = "n/a";
          if (N > 1) {
            std::snprintf(gb, sizeof gb, "%.3f", r.gbps);
            std::snprintf(gbm, sizeof gbm, "%.3f", r.gbps_min);
            std::snprintf(pc, sizeof pc, "%.1f", 100 * ratio(r.gbps, p2p_gbps));
            std::snprintf(pcm, sizeof pcm, "%.1f", 100 * ratio(r.gbps_min, p2p_gbps));
          }
          say("%-11s %-7s %5ld %9.1f %10.1f %10.1f %9.1f %9.1f %10.1f %11.1f %10.1f %7s %7s %6s %6s\n", r.mode.c_str(),
              payload, long(T), r.begin_s * 1e6, r.finish_s * 1e6, r.layer_s * 1e6, r.wait_s * 1e6, r.wait_min_s * 1e6,
              (r.finish_s - r.wait_s) * 1e6, r.dispatch_bytes / 1e3, r.combine_bytes / 1e3, gb, gbm, pc, pcm);
          emit({{"section", "moe"}, {"mode", r.mode}, {"payload", payload}, {"tokens_per_rank", T}, {"reps", o.reps},
                {"comm_time", "wait_seconds"}, {"begin_us", r.begin_s * 1e6}, {"finish_us", r.finish_s * 1e6},
                {"layer_us", r.layer_s * 1e6}, {"comm_us", r.wait_s * 1e6}, {"comm_min_rank_us", r.wait_min_s * 1e6},
                {"compute_us", (r.finish_s - r.wait_s) * 1e6}, {"dispatch_bytes_per_rank", r.dispatch_bytes},
                {"combine_bytes_per_rank", r.combine_bytes}, {"comm_gbps", r.gbps}, {"comm_min_rank_gbps", r.gbps_min},
                {"p2p_gbps", p2p_gbps}, {"ratio_to_p2p", ratio(r.gbps, p2p_gbps)},
                {"min_rank_ratio_to_p2p", ratio(r.gbps_min, p2p_gbps)}});
          last = r;
        }
        if (N > 1) largest.emplace_back(bytes_per_token(last, cfg, N), last);
      }
    }
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
