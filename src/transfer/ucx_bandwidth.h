// Raw UCP tag bandwidth between two processes: the baseline `dsinfer transfer-bench` measures
// UcxAgent against. Same UCX features and endpoint error mode as the agent, but no queue, no
// thread hand-off and no per-message buffer: the calling thread busy-polls one worker, receives
// are pre-posted into reused buffers, and every send goes out of one buffer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsinfer::transfer {

struct RawTransferResult {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  double seconds = 0;  // sender: first send posted to last completion; receiver: 0
};

class RawUcxWorker {
 public:
  // `peer_error_mode`: UCP_ERR_HANDLING_MODE_PEER on the sender's endpoint, as UcxAgent (which
  // makes UCX 1.13 use TCP even on one machine); false lets UCX pick shared memory.
  explicit RawUcxWorker(bool peer_error_mode = true);
  ~RawUcxWorker();
  RawUcxWorker(const RawUcxWorker&) = delete;
  RawUcxWorker& operator=(const RawUcxWorker&) = delete;

  const std::vector<uint8_t>& address() const;

  // Sender: keeps `window` sends of `message_bytes` in flight to `peer` for `seconds`, waits for
  // them, then sends the count in a stop message. Throws Error if a send fails.
  RawTransferResult send_for(const std::vector<uint8_t>& peer, size_t message_bytes, int window, double seconds);
  // Receiver: receives until the stop message and every message it counts have arrived.
  RawTransferResult receive_until_stop(size_t message_bytes, int window);
  // The transports of the sender's endpoint ("tcp/lo"), after send_for.
  std::string transports() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsinfer::transfer
