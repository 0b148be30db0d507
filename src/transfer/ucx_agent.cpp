#include "transfer/ucx_agent.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <ucp/api/ucp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "base/hex.h"
#include "base/log.h"

namespace dsinfer::transfer {

namespace {

using Clock = std::chrono::steady_clock;

// Idle, the thread wakes at least this often: UCX's keepalive (which finds dead peers) and its
// timers only run inside ucp_worker_progress.
constexpr int kIdleWaitMs = 100;
// With operations in flight it spins this long after the last event before sleeping (an answer
// usually comes within microseconds), then sleeps at most kBusyWaitMs at a time in case a
// transport completes work without signalling the event fd.
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr int kBusyWaitMs = 1;
// How long the destructor lets force-closed endpoints and cancelled operations complete.
constexpr auto kShutdownGrace = std::chrono::seconds(2);
// Receive buffers the receiver leaves in place (does not move from) serve later messages of a
// similar size: a fresh multi-MB buffer per message costs page faults (glibc maps, trims and
// unmaps large blocks), which held a receiver of 1 MB messages over TCP to 1.3-1.6 GB/s where
// reuse reaches 1.9-2.8 on this project's 2-core test machine.
constexpr size_t kSpareMinBytes = 64 << 10;  // smaller ones come cheaply from malloc's free lists
constexpr size_t kSpareCount = 32;
constexpr size_t kSpareTotalBytes = 256 << 20;
// ucp_worker_progress calls per round before the thread looks at its queue and probes again,
// so a stream of incoming traffic cannot starve sends.
constexpr int kProgressPerRound = 256;

}  // namespace

struct UcxAgent::Impl {
  struct SendOp {
    SendOp(Impl* i, std::vector<uint8_t>&& d, SendDone&& cb) : impl(i), data(std::move(d)), done(std::move(cb)) {}
    Impl* impl;
    std::vector<uint8_t> data;  // owned until UCX is done with it
    SendDone done;
    ucs_status_t status = UCS_INPROGRESS;
    std::string error;      // context for a failure (else the status string is used)
    bool finished = false;  // done already ran (failed at shutdown); a late UCX callback is ignored
  };
  struct RecvOp {
    uint64_t tag = 0;
    std::vector<uint8_t> data;
    void* request = nullptr;  // while UCX receives it
    bool complete = false;
    ucs_status_t status = UCS_OK;
  };
  struct Peer {
    Peer(Impl* i, std::string k) : impl(i), key(std::move(k)) {}
    Impl* impl;
    std::string key;  // the peer's address bytes
    ucp_ep_h ep = nullptr;
    bool close_started = false;
    void* close_request = nullptr;
  };
  struct Queued {
    std::string peer;
    uint64_t tag;
    std::vector<uint8_t> data;
    SendDone done;
  };

  std::string name;
  std::vector<uint8_t> address;
  int wake_fd = -1;

  // Shared between the agent thread and callers.
  std::mutex mu;
  std::deque<Queued> queue;
  std::shared_ptr<const Receiver> receiver;
  bool stopping = false;  // the destructor asked the thread to stop
  bool closed = false;    // the thread takes no more sends: send() fails them at once
  std::atomic<uint64_t> messages_sent{0}, bytes_sent{0}, messages_received{0}, bytes_received{0}, send_errors{0},
      messages_dropped{0}, receive_errors{0};

  // The agent thread's own.
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  int worker_fd = -1;
  std::unordered_map<std::string, std::unique_ptr<Peer>> peers;
  std::vector<std::unique_ptr<Peer>> closing;  // failed or shut-down endpoints being closed
  std::unordered_set<SendOp*> in_flight;       // posted, waiting for UCX's callback
  std::vector<SendOp*> completed;              // UCX is done with them; their `done` is still to run
  std::deque<std::unique_ptr<RecvOp>> receives;  // probed, in arrival order
  std::vector<std::unique_ptr<SendOp>> zombies;  // failed at shutdown while UCX still held them
  std::vector<std::vector<uint8_t>> spare;        // receive buffers to reuse (kSpare*)
  size_t spare_bytes = 0;
  std::thread thread;

  ~Impl() {
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void wake() const {
    uint64_t one = 1;
    // Cannot fail short of a full counter (2^64 - 1 wakes unread); the thread reads it every round.
    [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof one);
  }

  void check_ucx(ucs_status_t s, const char* what) const {
    check(s == UCS_OK, "UCX agent '", name, "': ", what, " failed: ", ucs_status_string(s));
  }

  void run(std::promise<void>& started) {
    pthread_setname_np(pthread_self(), "ucx-agent");
    try {
      start();
    } catch (...) {
      stop_ucx();
      started.set_exception(std::current_exception());
      return;
    }
    started.set_value();
    loop();
    shutdown();
  }

  void start() {
    ucp_config_t* config = nullptr;
    check_ucx(ucp_config_read(nullptr, nullptr, &config), "reading the UCX configuration");
    // UCX's default keepalive (20 s) would leave sends to a dead peer on shared memory pending that
    // long; 1 s costs a few bytes per endpoint per second. The environment still wins.
    if (!std::getenv("UCX_KEEPALIVE_INTERVAL")) ucp_config_modify(config, "KEEPALIVE_INTERVAL", "1s");
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_NAME;
    params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;
    params.name = name.c_str();
    ucs_status_t s = ucp_init(&params, config, &context);
    ucp_config_release(config);
    check_ucx(s, "ucp_init");

    ucp_worker_params_t wparams{};
    wparams.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE | UCP_WORKER_PARAM_FIELD_NAME;
    wparams.thread_mode = UCS_THREAD_MODE_SINGLE;
    wparams.name = name.c_str();
    check_ucx(ucp_worker_create(context, &wparams, &worker), "ucp_worker_create");
    check_ucx(ucp_worker_get_efd(worker, &worker_fd), "ucp_worker_get_efd");

    ucp_address_t* addr = nullptr;
    size_t len = 0;
    check_ucx(ucp_worker_get_address(worker, &addr, &len), "ucp_worker_get_address");
    const auto* bytes = reinterpret_cast<const uint8_t*>(addr);
    address.assign(bytes, bytes + len);
    ucp_worker_release_address(worker, addr);
  }

  void stop_ucx() {
    if (worker) ucp_worker_destroy(worker);
    if (context) ucp_cleanup(context);
    worker = nullptr;
    context = nullptr;
  }

  void loop() {
    auto last_event = Clock::now();
    for (;;) {
      std::deque<Queued> batch;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
        batch.swap(queue);
      }
      size_t events = batch.size();
      for (Queued& q : batch) post(q);
      events += progress();
      events += probe();
      deliver();
      run_completions();
      reap_closing();

      auto now = Clock::now();
      if (events) {
        last_event = now;
        continue;
      }
      bool busy = !in_flight.empty() || !receives.empty() || !closing.empty();
      if (busy && now - last_event < kSpin) continue;
      // Everything is drained (progress returned 0, no probe left); arm says BUSY if an event
      // slipped in since, and then it is progressed before sleeping.
      ucs_status_t s = ucp_worker_arm(worker);
      if (s == UCS_ERR_BUSY) continue;
      if (s != UCS_OK) log_warn("UCX agent '", name, "': ucp_worker_arm: ", ucs_status_string(s));
      pollfd fds[2] = {{worker_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      ::poll(fds, 2, busy ? kBusyWaitMs : kIdleWaitMs);
      if (fds[1].revents & POLLIN) {
        uint64_t v;
        [[maybe_unused]] ssize_t n = ::read(wake_fd, &v, sizeof v);
      }
    }
  }

  size_t progress() {
    size_t events = 0;
    for (int i = 0; i < kProgressPerRound; ++i) {
      unsigned n = ucp_worker_progress(worker);
      if (n == 0) break;
      events += n;
    }
    return events;
  }

  // --- sends ---

  static void on_send(void* request, ucs_status_t status, void* user_data) {
    auto* op = static_cast<SendOp*>(user_data);
    if (op->finished) return;  // a late completion while the worker is destroyed
    ucp_request_free(request);
    op->status = status;
    op->impl->in_flight.erase(op);
    op->impl->completed.push_back(op);
  }

  void finish(SendOp* op, ucs_status_t status, std::string error = {}) {
    op->status = status;
    op->error = std::move(error);
    completed.push_back(op);
  }

  static void on_ep_error(void* arg, ucp_ep_h, ucs_status_t status) {
    auto* peer = static_cast<Peer*>(arg);
    Impl* impl = peer->impl;
    auto it = impl->peers.find(peer->key);
    if (it == impl->peers.end() || it->second.get() != peer) return;  // already closing
    log_warn("UCX agent '", impl->name, "': connection to a peer failed (", ucs_status_string(status),
             "); its sends fail, the next send reconnects");
    // UCX fails the endpoint's outstanding requests itself; the endpoint is closed after this
    // callback returns (reap_closing), not inside it.
    impl->closing.push_back(std::move(it->second));
    impl->peers.erase(it);
  }

  Peer* connect(const std::string& key, ucs_status_t* status) {
    auto it = peers.find(key);
    if (it != peers.end()) return it->second.get();
    auto peer = std::make_unique<Peer>(this, key);
    ucp_ep_params_t params{};
    params.field_mask =
        UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params.address = reinterpret_cast<const ucp_address_t*>(key.data());
    params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    params.err_handler.cb = on_ep_error;
    params.err_handler.arg = peer.get();
    *status = ucp_ep_create(worker, &params, &peer->ep);
    if (*status != UCS_OK) return nullptr;
    Peer* p = peers.emplace(key, std::move(peer)).first->second.get();
    return handshake(p, status) ? p : nullptr;
  }

  // A new endpoint is flushed before its first message: the flush completes once UCX's connection
  // handshake has (the receiver's reply has arrived). UCX 1.13 aborts a receiver whose reply is
  // still queued when the sender dies (openucx/ucx#8175); with the handshake over before any data
  // goes out, a sender dying mid-transfer is an ordinary peer failure on the receiving side. The
  // agent thread progresses only this until then (milliseconds; a dead address fails at once).
  bool handshake(Peer* peer, ucs_status_t* status) {
    const std::string key = peer->key;
    ucp_request_param_t params{};
    ucs_status_ptr_t r = ucp_ep_flush_nbx(peer->ep, &params);
    ucs_status_t s = UCS_OK;
    if (UCS_PTR_IS_ERR(r)) {
      s = UCS_PTR_STATUS(r);
    } else if (r != nullptr) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while ((s = ucp_request_check_status(r)) == UCS_INPROGRESS && std::chrono::steady_clock::now() < deadline)
        ucp_worker_progress(worker);
      if (s == UCS_INPROGRESS) {
        ucp_request_cancel(worker, r);
        while (ucp_request_check_status(r) == UCS_INPROGRESS) ucp_worker_progress(worker);
        s = UCS_ERR_TIMED_OUT;
      }
      ucp_request_free(r);
    }
    auto it = peers.find(key);
    const bool alive = it != peers.end() && it->second.get() == peer;  // on_ep_error may have taken it
    if (s == UCS_OK && alive) return true;
    *status = s == UCS_OK ? UCS_ERR_ENDPOINT_TIMEOUT : s;
    if (alive) {  // closed like a failed endpoint
      closing.push_back(std::move(it->second));
      peers.erase(it);
    }
    return false;
  }

  void post(Queued& q) {
    auto* op = new SendOp(this, std::move(q.data), std::move(q.done));
    if (q.peer.empty()) return finish(op, UCS_ERR_INVALID_ADDR, "empty peer address");
    ucs_status_t s = UCS_OK;
    Peer* peer = connect(q.peer, &s);
    if (!peer) return finish(op, s, str("cannot connect to the peer: ", ucs_status_string(s)));
    ucp_request_param_t params{};
    params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    params.cb.send = on_send;
    params.user_data = op;
    ucs_status_ptr_t r = ucp_tag_send_nbx(peer->ep, op->data.data(), op->data.size(), q.tag, &params);
    if (r == nullptr)
      finish(op, UCS_OK);
    else if (UCS_PTR_IS_ERR(r))
      finish(op, UCS_PTR_STATUS(r));
    else
      in_flight.insert(op);
  }

  static void call_done(SendOp* op, bool ok, const std::string& error) {
    if (!op->done) return;
    try {
      op->done(ok, error);
    } catch (const std::exception& e) {
      log_warn("UCX agent: a send callback threw: ", e.what());
    }
  }

  void run_completions() {
    while (!completed.empty()) {
      std::vector<SendOp*> batch;
      batch.swap(completed);  // callbacks may queue sends; those complete in a later round
      for (SendOp* op : batch) {
        std::unique_ptr<SendOp> owned(op);
        bool ok = op->status == UCS_OK;
        if (ok) {
          messages_sent.fetch_add(1, std::memory_order_relaxed);
          bytes_sent.fetch_add(op->data.size(), std::memory_order_relaxed);
        } else {
          send_errors.fetch_add(1, std::memory_order_relaxed);
        }
        std::string error =
            ok ? std::string() : (op->error.empty() ? str("UCX send failed: ", ucs_status_string(op->status)) : op->error);
        op->data = {};  // free the message before the callback, which may queue the next one
        call_done(op, ok, error);
      }
    }
  }

  void reap_closing() {
    for (size_t i = 0; i < closing.size();) {
      Peer& p = *closing[i];
      if (!p.close_started) {
        p.close_started = true;
        ucp_request_param_t params{};
        params.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
        params.flags = UCP_EP_CLOSE_FLAG_FORCE;  // no flush: a failed or shut-down peer answers nothing
        ucs_status_ptr_t r = ucp_ep_close_nbx(p.ep, &params);
        p.close_request = UCS_PTR_IS_PTR(r) ? r : nullptr;
      }
      if (p.close_request && ucp_request_check_status(p.close_request) == UCS_INPROGRESS) {
        ++i;
        continue;
      }
      if (p.close_request) ucp_request_free(p.close_request);
      closing.erase(closing.begin() + long(i));
    }
  }

  // --- receives ---

  static void on_recv(void* request, ucs_status_t status, const ucp_tag_recv_info_t*, void* user_data) {
    auto* op = static_cast<RecvOp*>(user_data);
    op->status = status;
    op->complete = true;
    op->request = nullptr;
    ucp_request_free(request);
  }

  // Takes every message UCX holds unexpected and starts receiving it whole into a buffer of its
  // length (for a large message this starts the rendezvous).
  size_t probe() {
    size_t n = 0;
    for (;;) {
      ucp_tag_recv_info_t info{};
      ucp_tag_message_h msg = ucp_tag_probe_nb(worker, 0, 0, 1, &info);
      if (!msg) break;
      ++n;
      auto op = std::make_unique<RecvOp>();
      op->tag = info.sender_tag;
      op->data = take_buffer(info.length);
      ucp_request_param_t params{};
      params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
      params.cb.recv = on_recv;
      params.user_data = op.get();
      ucs_status_ptr_t r = ucp_tag_msg_recv_nbx(worker, op->data.data(), info.length, msg, &params);
      if (r == nullptr) {
        op->complete = true;
      } else if (UCS_PTR_IS_ERR(r)) {
        op->complete = true;
        op->status = UCS_PTR_STATUS(r);
      } else {
        op->request = r;
      }
      receives.push_back(std::move(op));
    }
    return n;
  }

  std::vector<uint8_t> take_buffer(size_t n) {
    if (n >= kSpareMinBytes) {
      for (size_t i = 0; i < spare.size(); ++i) {
        size_t cap = spare[i].capacity();
        if (cap < n || cap > 2 * n) continue;
        std::vector<uint8_t> b = std::move(spare[i]);
        spare.erase(spare.begin() + long(i));
        spare_bytes -= cap;
        b.resize(n);  // a reused buffer keeps its size: no zero-fill up to there
        return b;
      }
    }
    return std::vector<uint8_t>(n);
  }

  void keep_buffer(std::vector<uint8_t>&& b) {
    size_t cap = b.capacity();
    if (cap < kSpareMinBytes || spare.size() >= kSpareCount || spare_bytes + cap > kSpareTotalBytes) return;
    spare_bytes += cap;
    spare.push_back(std::move(b));
  }

  // Hands completed receives to the receiver in arrival order (UCX matches one sender's messages
  // in the order sent, but a large message completes after small ones that follow it).
  void deliver() {
    while (!receives.empty() && receives.front()->complete) {
      std::unique_ptr<RecvOp> op = std::move(receives.front());
      receives.pop_front();
      if (op->status != UCS_OK) {
        receive_errors.fetch_add(1, std::memory_order_relaxed);
        log_warn("UCX agent '", name, "': a receive failed: ", ucs_status_string(op->status));
        keep_buffer(std::move(op->data));
        continue;
      }
      messages_received.fetch_add(1, std::memory_order_relaxed);
      bytes_received.fetch_add(op->data.size(), std::memory_order_relaxed);
      std::shared_ptr<const Receiver> r;
      {
        std::lock_guard<std::mutex> lock(mu);
        r = receiver;
      }
      if (!r || !*r) {
        messages_dropped.fetch_add(1, std::memory_order_relaxed);
      } else {
        try {
          (*r)(op->tag, std::move(op->data));
        } catch (const std::exception& e) {
          log_warn("UCX agent '", name, "': the receiver threw: ", e.what());
        }
      }
      keep_buffer(std::move(op->data));  // empty if the receiver took it
    }
  }

  // --- shutdown ---

  bool receiving() const {
    for (const auto& r : receives)
      if (r->request) return true;
    return false;
  }

  void shutdown() {
    std::deque<Queued> left;
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
      left.swap(queue);
    }
    for (Queued& q : left) finish(new SendOp(this, std::move(q.data), std::move(q.done)), UCS_ERR_CANCELED,
                                  "UCX agent stopped before the message was sent");
    // A forced close completes the endpoint's outstanding sends with UCS_ERR_CANCELED.
    for (auto& [key, peer] : peers) closing.push_back(std::move(peer));
    peers.clear();
    for (auto& r : receives)
      if (r->request) ucp_request_cancel(worker, r->request);  // completes with UCS_ERR_CANCELED
    auto deadline = Clock::now() + kShutdownGrace;
    do {
      progress();
      reap_closing();
      run_completions();
    } while ((!closing.empty() || !in_flight.empty() || receiving()) && Clock::now() < deadline);
    // Whatever UCX did not complete in time fails now; UCX may still call back while the worker is
    // destroyed, so these stay allocated (and marked) until then.
    for (SendOp* op : in_flight) {
      op->finished = true;
      send_errors.fetch_add(1, std::memory_order_relaxed);
      call_done(op, false, "UCX agent stopped with the send in flight");
      zombies.emplace_back(op);
    }
    in_flight.clear();
    stop_ucx();
    zombies.clear();
    receives.clear();
    closing.clear();
  }
};

UcxAgent::UcxAgent(std::string name) : impl_(std::make_unique<Impl>()) {
  impl_->name = std::move(name);
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  check(impl_->wake_fd >= 0, "UCX agent '", impl_->name, "': eventfd: ", std::strerror(errno));
  std::promise<void> started;
  std::future<void> ready = started.get_future();
  impl_->thread = std::thread([this, &started] { impl_->run(started); });
  try {
    ready.get();
  } catch (...) {
    impl_->thread.join();
    throw;
  }
}

UcxAgent::~UcxAgent() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake();
  impl_->thread.join();
}

const std::vector<uint8_t>& UcxAgent::address() const { return impl_->address; }

std::string UcxAgent::address_hex() const { return to_hex(impl_->address); }

std::vector<uint8_t> UcxAgent::parse_hex(const std::string& hex) { return bytes_from_hex(hex, "UCX address"); }

void UcxAgent::send(const std::vector<uint8_t>& peer_address, uint64_t tag, std::vector<uint8_t> message,
                    SendDone done) {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.closed) {
      // A non-empty queue already has a wake-up pending (the thread takes the queue before sleeping).
      bool wake = m.queue.empty();
      m.queue.push_back({std::string(peer_address.begin(), peer_address.end()), tag, std::move(message),
                         std::move(done)});
      if (wake) m.wake();
      return;
    }
  }
  // Only reachable from a callback on the agent thread while it shuts down.
  m.send_errors.fetch_add(1, std::memory_order_relaxed);
  if (done) done(false, "UCX agent stopped");
}

void UcxAgent::set_receiver(Receiver r) {
  auto p = std::make_shared<const Receiver>(std::move(r));
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->receiver = std::move(p);
}

AgentStats UcxAgent::stats() const {
  const Impl& m = *impl_;
  AgentStats s;
  s.messages_sent = m.messages_sent.load();
  s.bytes_sent = m.bytes_sent.load();
  s.messages_received = m.messages_received.load();
  s.bytes_received = m.bytes_received.load();
  s.send_errors = m.send_errors.load();
  s.messages_dropped = m.messages_dropped.load();
  s.receive_errors = m.receive_errors.load();
  return s;
}

}  // namespace dsinfer::transfer
