// `dsinfer transfer-bench`: UCX bandwidth between two processes on this machine, raw UCP tag sends
// (transfer/ucx_bandwidth.h) against the same traffic through UcxAgent (the KV transfer's wire),
// and the KV transfer's whole path: prompts' latent rows encoded and checksummed by the prefill
// side's exporter, verified and written into reserved blocks by the decode side's receiver.
// The process forks before it creates any UCX object (UCX state must not be forked); parent and
// child swap worker addresses over a socketpair; the parent sends, the child counts what arrives.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "base/timer.h"
#include "serve/pd_exporter.h"
#include "serve/pd_receiver.h"
#include "transfer/ucx_agent.h"
#include "transfer/ucx_bandwidth.h"

namespace dsinfer::app {

namespace {

using transfer::RawTransferResult;
using transfer::RawUcxWorker;
using transfer::UcxAgent;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kDataTag = 1, kStopTag = 2;

struct Options {
  size_t message_bytes;
  double seconds;
  int window;
  bool raw_peer_errors;  // the raw endpoint's error mode: PEER (as UcxAgent) or NONE
  // The KV phase: `kv_transfers` prompts of `kv_tokens` tokens, DeepSeek-V3's latent rows (576
  // values: bf16 1,152 bytes, FP8 656) in `kv_layers` layers.
  int kv_transfers;
  int64_t kv_tokens, kv_layers;
  bool kv_fp8;
};

kernels::KvCacheSpec kv_spec(const Options& o) {
  kernels::KvCacheSpec spec;
  spec.num_layers = o.kv_layers;
  spec.dim = 576;
  spec.rope_dim = 64;
  spec.dtype = o.kv_fp8 ? DType::kF8E4M3 : DType::kBF16;
  spec.block_size = 64;
  return spec;
}

// One prompt's worth of blocks, shared by every transfer of the KV phase (the bench does not care
// that they overwrite each other).
struct KvPool {
  kernels::KvCacheSpec spec;
  std::vector<uint8_t> bytes;
  kernels::KvCacheView view;
  std::vector<int32_t> table;
  explicit KvPool(const Options& o) : spec(kv_spec(o)) {
    const int64_t blocks = (o.kv_tokens + 63) / 64;
    bytes.assign(size_t(blocks * spec.block_bytes()), 0x3c);
    view = {bytes.data(), spec, blocks};
    for (int64_t b = 0; b < blocks; ++b) table.push_back(int32_t(b));
  }
};

// Length-prefixed blobs over the socketpair.
void write_all(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    check(w > 0, "transfer-bench: writing to the other process: ", std::strerror(errno));
    p += w;
    n -= size_t(w);
  }
}
void read_all(int fd, void* data, size_t n) {
  auto* p = static_cast<uint8_t*>(data);
  while (n) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    check(r > 0, "transfer-bench: the other process ", r == 0 ? "exited" : std::strerror(errno));
    p += r;
    n -= size_t(r);
  }
}
void send_blob(int fd, const std::vector<uint8_t>& b) {
  uint64_t n = b.size();
  write_all(fd, &n, sizeof n);
  write_all(fd, b.data(), b.size());
}
std::vector<uint8_t> recv_blob(int fd) {
  uint64_t n = 0;
  read_all(fd, &n, sizeof n);
  check(n < (1u << 20), "transfer-bench: bad message from the other process");
  std::vector<uint8_t> b(n);
  read_all(fd, b.data(), n);
  return b;
}
void send_u64(int fd, uint64_t v) { write_all(fd, &v, sizeof v); }
uint64_t recv_u64(int fd) {
  uint64_t v = 0;
  read_all(fd, &v, sizeof v);
  return v;
}

// Counts a window of sends in flight through UcxAgent.
struct Window {
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  uint64_t ok = 0, failed = 0;
  std::string error;
  UcxAgent::SendDone done() {
    return [this](bool good, const std::string& why) {
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      good ? ++ok : ++failed;
      if (!good && error.empty()) error = why;
      cv.notify_all();
    };
  }
  void wait_below(int n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight < n; });
    ++in_flight;
  }
};

// The child's KV phase: the decode side. Every transfer's import is reserved up front; the child
// reports when all are complete (every row verified and written, every first token in).
void run_child_kv(int fd, const Options& o) {
  UcxAgent agent("transfer-bench-kv-decode");
  KvPool pool(o);
  serve::pd::KvReceiver receiver;
  std::vector<std::shared_ptr<engine::KvImport>> imports;
  for (int k = 0; k < o.kv_transfers; ++k) {
    imports.push_back(std::make_shared<engine::KvImport>(o.kv_tokens, 600.0));
    imports.back()->reserved(pool.view, pool.table);
    receiver.expect(uint64_t(k + 1), imports.back());
  }
  agent.set_receiver([&](uint64_t tag, std::vector<uint8_t>&& m) { receiver.on_message(tag, std::move(m)); });
  send_blob(fd, agent.address());
  const double deadline = now_seconds() + 600;
  for (auto& im : imports) {
    while (im->state() == engine::KvImport::State::kReserved && now_seconds() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    check(im->state() == engine::KvImport::State::kReady, "transfer-bench: a KV transfer failed: ", im->error());
  }
  send_u64(fd, receiver.totals().bytes.load());
  recv_u64(fd);
}

// The child: receives every phase, reports what arrived. Never returns.
[[noreturn]] void run_child(int fd, const Options& o) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int code = 0;
  try {
    {
      RawUcxWorker raw;
      send_blob(fd, raw.address());
      RawTransferResult r = raw.receive_until_stop(o.message_bytes, o.window);
      send_u64(fd, r.bytes);
      recv_u64(fd);  // the parent's endpoint is closed: tear down without failing its sends
    }
    UcxAgent agent("transfer-bench-child");
    std::mutex mu;
    std::condition_variable cv;
    uint64_t messages = 0, bytes = 0, expected = ~uint64_t(0);
    agent.set_receiver([&](uint64_t tag, std::vector<uint8_t>&& m) {
      std::lock_guard<std::mutex> lock(mu);
      if (tag == kStopTag && m.size() == sizeof expected) {
        std::memcpy(&expected, m.data(), sizeof expected);
      } else {
        ++messages;
        bytes += m.size();
      }
      cv.notify_all();
    });
    send_blob(fd, agent.address());
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return messages >= expected; });
    }
    send_u64(fd, bytes);
    recv_u64(fd);
    run_child_kv(fd, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsinfer transfer-bench (receiver): error: %s\n", e.what());
    code = 1;
  }
  std::fflush(nullptr);
  _exit(code);
}

struct Measured {
  double gbps = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::string transports;
};

Measured raw_phase(int fd, const Options& o) {
  std::vector<uint8_t> peer = recv_blob(fd);
  Measured m;
  {
    RawUcxWorker raw(o.raw_peer_errors);
    RawTransferResult r = raw.send_for(peer, o.message_bytes, o.window, o.seconds);
    m.transports = raw.transports();
    uint64_t got = recv_u64(fd);
    check(got == r.bytes, "transfer-bench: raw UCX sent ", r.bytes, " bytes, the receiver counted ", got);
    m.bytes = got;
    m.seconds = r.seconds;
  }
  send_u64(fd, 0);
  return m;
}

Measured agent_phase(int fd, const Options& o) {
  std::vector<uint8_t> peer = recv_blob(fd);
  Measured m;
  {
    UcxAgent agent("transfer-bench");
    Window w;
    auto start = Clock::now();
    auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
    uint64_t sent = 0;
    while (Clock::now() < end) {
      w.wait_below(o.window);
      // A fresh buffer per message, as a caller hands its message over: its cost is the agent's.
      agent.send(peer, kDataTag, std::vector<uint8_t>(o.message_bytes, 0x5a), w.done());
      ++sent;
    }
    {
      std::unique_lock<std::mutex> lock(w.mu);
      w.cv.wait(lock, [&] { return w.in_flight == 0; });
      check(w.failed == 0, "transfer-bench: ", w.failed, " agent sends failed: ", w.error);
    }
    m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<uint8_t> stop(sizeof sent);
    std::memcpy(stop.data(), &sent, sizeof sent);
    w.wait_below(1);
    agent.send(peer, kStopTag, std::move(stop), w.done());
    uint64_t got = recv_u64(fd);
    check(got == sent * o.message_bytes, "transfer-bench: the agent sent ", sent * o.message_bytes,
          " bytes, the receiver counted ", got);
    m.bytes = got;
  }
  send_u64(fd, 0);
  return m;
}

// The parent's KV phase: the prefill side, every layer of every prompt sent as the exporter
// sends it during a prefill (here back to back: no compute to hide behind).
Measured kv_phase(int fd, const Options& o) {
  std::vector<uint8_t> peer = recv_blob(fd);
  Measured m;
  {
    UcxAgent agent("transfer-bench-kv-prefill");
    KvPool pool(o);
    serve::pd::ExportTotals totals;
    const double start = now_seconds();
    std::vector<std::shared_ptr<serve::pd::KvExporter>> exporters;
    for (int k = 0; k < o.kv_transfers; ++k) {
      auto x = std::make_shared<serve::pd::KvExporter>(agent, serve::pd::ExportTarget{peer, uint64_t(k + 1), 0},
                                                       o.kv_tokens, o.kv_layers, totals);
      for (int64_t l = 0; l < o.kv_layers; ++l) x->layer_written(l, pool.view.layer(l), pool.table.data(), o.kv_tokens);
      x->prefill_done({1, 2, std::nullopt, 0});
      exporters.push_back(std::move(x));
    }
    const uint64_t got = recv_u64(fd);  // the child has every row verified and written
    m.seconds = now_seconds() - start;
    for (auto& x : exporters) check(x->error().empty(), "transfer-bench: a KV send failed: ", x->error());
    check(got == totals.bytes.load(), "transfer-bench: sent ", totals.bytes.load(), " KV bytes, received ", got);
    m.bytes = got;
  }
  send_u64(fd, 0);
  return m;
}

int run_transfer_bench(Args& args) {
  Options o;
  double mb = args.get_double("mb", 1, 0, 1024, true);
  o.message_bytes = size_t(mb * (1 << 20));
  check(o.message_bytes > 0, "--mb is below one byte");
  o.seconds = args.get_double("seconds", 3, 0, 3600, true);
  o.window = int(args.get_int("window", 16, 1, 1024));
  std::string raw_errors = args.get_or("raw-error-mode", "peer");
  check(raw_errors == "peer" || raw_errors == "none", "--raw-error-mode must be peer or none, got '", raw_errors, "'");
  o.raw_peer_errors = raw_errors == "peer";
  o.kv_transfers = int(args.get_int("kv-transfers", 8, 1, 1024));
  o.kv_tokens = args.get_int("kv-tokens", 4096, 1, 1 << 20);
  o.kv_layers = args.get_int("kv-layers", 8, 1, 256);
  o.kv_fp8 = args.flag("kv-fp8");
  bool json = args.flag("json");
  args.finish();

  int fds[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair: ", std::strerror(errno));
  std::fflush(nullptr);
  pid_t pid = ::fork();
  check(pid >= 0, "fork: ", std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    run_child(fds[1], o);
  }
  ::close(fds[1]);
  Measured raw, agent, kv;
  try {
    raw = raw_phase(fds[0], o);
    agent = agent_phase(fds[0], o);
    kv = kv_phase(fds[0], o);
  } catch (...) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(fds[0]);
    throw;
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "transfer-bench: the receiving process failed");

  raw.gbps = double(raw.bytes) / raw.seconds / 1e9;
  agent.gbps = double(agent.bytes) / agent.seconds / 1e9;
  kv.gbps = double(kv.bytes) / kv.seconds / 1e9;
  if (json) {
    nlohmann::json out = {{"message_mb", mb},
                          {"window", o.window},
                          {"seconds", o.seconds},
                          {"raw_ucx_gbps", raw.gbps},
                          {"agent_gbps", agent.gbps},
                          {"raw_ucx_bytes", raw.bytes},
                          {"agent_bytes", agent.bytes},
                          {"transports", raw.transports},
                          {"raw_error_mode", raw_errors},
                          {"kv_gbps", kv.gbps},
                          {"kv_bytes", kv.bytes},
                          {"kv_transfers", o.kv_transfers},
                          {"kv_tokens", o.kv_tokens},
                          {"kv_layers", o.kv_layers},
                          {"kv_dtype", o.kv_fp8 ? "fp8" : "bf16"}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf(
        "%.3g MB messages, %d in flight, %.3g s each: raw UCX %.2f GB/s (over %s, error mode %s), UcxAgent %.2f GB/s "
        "(%.0f%%)\n"
        "(GB/s: 1e9 bytes the receiving process counted, over the time from the first send to the last completion)\n",
        mb, o.window, o.seconds, raw.gbps, raw.transports.empty() ? "?" : raw.transports.c_str(), raw_errors.c_str(),
        agent.gbps, 100 * agent.gbps / raw.gbps);
    std::printf("KV path (%d prompts of %lld tokens x %lld layers, %s rows, checksummed and verified): %.2f GB/s (%.0f%% of raw)\n",
                o.kv_transfers, (long long)o.kv_tokens, (long long)o.kv_layers, o.kv_fp8 ? "fp8" : "bf16", kv.gbps,
                100 * kv.gbps / raw.gbps);
  }
  return 0;
}

const Registration kRegistration({
    "transfer-bench",
    "UCX bandwidth between two local processes: raw UCP tag sends against the KV transfer's UcxAgent",
    "[--mb 1] [--seconds 3] [--window 16] [--raw-error-mode peer|none] [--json]\n"
    "       [--kv-transfers 8] [--kv-tokens 4096] [--kv-layers 8] [--kv-fp8]\n\n"
    "  --mb MB                 message size in MiB (fractions allowed)\n"
    "  --seconds S             how long each of the two measurements sends\n"
    "  --window N              sends in flight at once\n"
    "  --raw-error-mode MODE   the raw endpoint's: peer (default, as UcxAgent's: UCX 1.13 then takes TCP\n"
    "                          even on one machine) or none (shared memory, no failure detection)\n"
    "  --json                  one JSON object: message_mb, window, seconds, raw_ucx_gbps, agent_gbps,\n"
    "                          transports (the raw endpoint's), raw_error_mode, raw_ucx_bytes, agent_bytes\n\n"
    "Forks a receiving process; the parent sends to it for S seconds with raw UCP tag sends, then as\n"
    "many seconds through UcxAgent::send, then the KV phase: --kv-transfers prompts' latent rows through\n"
    "the prefill side's exporter to the decode side's receiver (kv_gbps: bytes over first send to the\n"
    "last row verified and written).",
    run_transfer_bench,
});

}  // namespace

}  // namespace dsinfer::app
