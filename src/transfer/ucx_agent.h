// A UCX messaging agent: whole messages, tagged, between processes (or agents in one process),
// over whatever UCX picks (RDMA on a cluster, TCP otherwise and, with UCX 1.13, on one machine:
// see Failure). It is the wire of the KV transfer between prefill and decode instances.
//
// One UCX context and worker per agent, owned by the agent's own progress thread: every UCX call
// happens there (the worker runs in UCS_THREAD_MODE_SINGLE), and send() and set_receiver() only
// hand work to it. The thread sleeps in poll() on the worker's event fd and an eventfd when there
// is nothing to do (at most 100 ms, so UCX's keepalive still runs); it only spins, briefly, while
// operations are in flight.
//
// Failure: endpoints use UCP_ERR_HANDLING_MODE_PEER, so a peer that dies fails its sends (pending
// ones and new ones) with done(false, ...) instead of hanging them. With UCX 1.13 that error mode
// rules out the shared-memory transports, so on one machine UCX talks TCP over loopback (tcp/lo),
// and a killed peer's sockets are reset by the kernel: its pending sends fail within ~10 ms, new
// ones (connection refused) as fast (tests/transfer/ucx_agent_test.cpp, KilledPeerFailsSends). A
// peer that vanishes without a reset (its host lost) is found by UCX's keepalive, set to 1 s here
// unless UCX_KEEPALIVE_INTERVAL says otherwise (UCX's default is 20 s), and TCP's
// (UCX_TCP_KEEPIDLE/KEEPINTVL). A peer that is alive but stopped is not a failure: sends to it wait.
// Known UCX 1.13 defect (the assertion was removed upstream in openucx/ucx#8175): a receiver
// whose reply to a new sender's connection request is still queued when that sender dies aborts
// on an assertion. The agent therefore flushes a new endpoint before its first message (the
// flush completes once the receiver's reply has arrived), which leaves the window only for a
// sender dying inside its own connection handshake, before any data was sent.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dsinfer::transfer {

struct AgentStats {
  uint64_t messages_sent = 0, bytes_sent = 0, messages_received = 0, bytes_received = 0, send_errors = 0;
  // Received messages no receiver was set for (also counted in messages_received), and receives
  // UCX failed (a sender that died mid-message).
  uint64_t messages_dropped = 0, receive_errors = 0;
};

class UcxAgent {
 public:
  // Starts UCX and the progress thread. Throws Error naming UCX's status string if UCX cannot
  // start. `name` shows in UCX's own diagnostics and in log lines.
  explicit UcxAgent(std::string name);
  // Stops the thread: sends not yet complete fail (their callbacks run with ok=false, on the
  // agent thread, before this returns), messages still arriving are dropped, endpoints close.
  ~UcxAgent();
  UcxAgent(const UcxAgent&) = delete;
  UcxAgent& operator=(const UcxAgent&) = delete;

  // This worker's address (opaque bytes a peer passes to send()).
  const std::vector<uint8_t>& address() const;
  std::string address_hex() const;  // lowercase hex of address()
  // Throws Error on empty, odd-length or non-hex text.
  static std::vector<uint8_t> parse_hex(const std::string& hex);

  using SendDone = std::function<void(bool ok, const std::string& error)>;
  // Queues `message` for the worker at `peer_address`, tagged `tag`. Thread-safe; returns at once.
  // The endpoint to a peer is created once and cached; a failed one is dropped, so the next send
  // reconnects. `done` (may be empty) runs on the agent thread exactly once: when the send
  // completes (ok) or fails (error text). Messages to one peer are sent in the order queued, and
  // the receiving agent delivers one sender's messages in that order.
  void send(const std::vector<uint8_t>& peer_address, uint64_t tag, std::vector<uint8_t> message,
            SendDone done = {});

  // Every message that arrives, any tag, whole, goes to this callback on the agent thread, in the
  // order the messages arrived (a large message holds back those behind it until it is complete).
  // Set it before peers send: messages arriving with no receiver set are dropped (counted).
  // To keep the bytes past the callback, move the vector out: a vector left in place is reused
  // for a later message, so pointers into it must not outlive the call.
  using Receiver = std::function<void(uint64_t tag, std::vector<uint8_t>&& message)>;
  void set_receiver(Receiver r);

  AgentStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsinfer::transfer
