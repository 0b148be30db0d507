// A prefill instance's side of one request's KV transfer (engine::KvExport over UCX): each
// layer's new rows leave as one message the moment the forward has written them, so the
// transfer runs while the later layers compute; the first token follows in a done message.
// complete() once every message has been handed to the decode instance (or one failed).
//
// DSINFER_PD_FAULT (tests only) injects the faults docs/serving.md lists:
//   exit-after-layers:N  the process exits (status 3) after sending a request's N-th layer message
//   corrupt              one byte of the first block is flipped after its checksum
//   stall                the done message is never sent (the decode side's timeout ends it)
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/kv_transfer.h"
#include "serve/pd_messages.h"
#include "transfer/ucx_agent.h"

namespace dsinfer::serve::pd {

struct ExportTarget {
  std::vector<uint8_t> peer;  // the decode instance's UCX address
  uint64_t transfer = 0;
  uint32_t attempt = 0;
};

// What a prefill instance's exports add up to (/metrics).
struct ExportTotals {
  std::atomic<uint64_t> transfers{0}, failed{0}, messages{0}, bytes{0};
  // Per transfer, summed: first message queued -> last acknowledged, and the part of that after
  // the prompt's compute ended (what the transfer added to time to first token).
  std::atomic<uint64_t> micros_total{0}, micros_exposed{0};
};

// Owned by shared_ptr (the sends' callbacks hold it until they run).
class KvExporter : public engine::KvExport, public std::enable_shared_from_this<KvExporter> {
 public:
  KvExporter(transfer::UcxAgent& agent, ExportTarget target, int64_t prompt_tokens, int64_t num_layers,
             ExportTotals& totals);

  void layer_written(int64_t layer, const kernels::LatentCacheView& cache, const int32_t* block_table,
                     int64_t rows) override;
  void prefill_done(const engine::FirstToken& first) override;

  // Thread-safe. Done: every message acknowledged, or one failed (error() says why).
  bool complete() const;
  std::string error() const;
  uint64_t bytes() const;
  // Runs once when complete, on whichever thread completes it; set before the request runs.
  void set_on_complete(std::function<void()> fn);
  // The request ended without a first token (aborted, failed): nothing more will be sent.
  void abandon(const std::string& why);
  // Sends a heartbeat when nothing was sent for `every` seconds (the prompt is queued or
  // computing), so the decode side keeps the reservation. Thread-safe.
  void keep_alive(double now, double every);

 private:
  transfer::UcxAgent& agent_;
  const ExportTarget target_;
  const int64_t prompt_tokens_;
  ExportTotals& totals_;
  std::vector<int64_t> full_blocks_sent_;  // per layer: whole blocks already sent (engine thread)
  int64_t layer_messages_ = 0;             // engine thread
  const double created_;

  mutable std::mutex mu_;
  int64_t outstanding_ = 0;
  bool done_queued_ = false, finished_ = false;
  std::string error_;
  uint64_t bytes_ = 0;
  double first_send_ = 0, compute_end_ = 0, last_send_ = 0;
  std::function<void()> on_complete_;

  void send(std::vector<uint8_t> msg);
  void sent(bool ok, const std::string& why);
  void finish_locked(std::function<void()>& run);  // with mu_ held: complete, and who to tell
};

}  // namespace dsinfer::serve::pd
