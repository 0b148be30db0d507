#include "serve/pd_exporter.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "base/error.h"
#include "base/log.h"
#include "base/timer.h"

namespace dsinfer::serve::pd {

namespace {

struct Fault {
  int64_t exit_after_layers = 0;
  bool corrupt = false, stall = false;
};

const Fault& fault() {
  static const Fault f = [] {
    Fault out;
    const char* env = std::getenv("DSINFER_PD_FAULT");
    if (!env) return out;
    const std::string s = env;
    if (s.rfind("exit-after-layers:", 0) == 0) out.exit_after_layers = std::atoll(s.c_str() + 18);
    out.corrupt = s == "corrupt";
    out.stall = s == "stall";
    log_warn("DSINFER_PD_FAULT=", s, ": injecting a KV transfer fault (tests only)");
    return out;
  }();
  return f;
}

}  // namespace

KvExporter::KvExporter(transfer::UcxAgent& agent, ExportTarget target, int64_t prompt_tokens, int64_t num_layers,
                       ExportTotals& totals)
    : agent_(agent), target_(std::move(target)), prompt_tokens_(prompt_tokens), totals_(totals),
      full_blocks_sent_(size_t(num_layers), 0), created_(now_seconds()) {}

void KvExporter::layer_written(int64_t layer, const kernels::LatentCacheView& cache, const int32_t* block_table,
                               int64_t rows) {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
  }
  const int64_t bs = cache.block_size;
  int64_t& sent = full_blocks_sent_[size_t(layer)];
  const int64_t last = (rows + bs - 1) / bs - 1;
  if (last < sent) return;
  // Blocks from the first not yet sent whole; a partial last block goes again, fuller, next step.
  const MessageHead head{MessageKind::kLayer, target_.transfer, target_.attempt};
  std::vector<uint8_t> msg = encode_layer(head, uint32_t(layer), cache, block_table, sent, last, rows);
  sent = rows / bs;
  if (fault().corrupt && layer == 0) msg.back() ^= 0x5a;
  send(std::move(msg));
  ++layer_messages_;
  if (fault().exit_after_layers > 0 && layer_messages_ >= fault().exit_after_layers) {
    log_warn("DSINFER_PD_FAULT: exiting after ", layer_messages_, " layer messages");
    std::_Exit(3);
  }
}

void KvExporter::prefill_done(const engine::FirstToken& first) {
  if (fault().stall) return;  // never done: the decode side's silence timeout ends it
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    compute_end_ = now_seconds();
    done_queued_ = true;
  }
  send(encode_done({MessageKind::kDone, target_.transfer, target_.attempt}, first));
}

void KvExporter::keep_alive(double now, double every) {
  {
    std::lock_guard lock(mu_);
    if (finished_ || done_queued_ || now - std::max(last_send_, created_) < every) return;
    last_send_ = now;
  }
  // Not counted as outstanding: a heartbeat that fails says nothing the next real message will not.
  agent_.send(target_.peer, target_.transfer, encode_alive({MessageKind::kAlive, target_.transfer, target_.attempt}));
}

void KvExporter::send(std::vector<uint8_t> msg) {
  const size_t n = msg.size();
  {
    std::lock_guard lock(mu_);
    if (first_send_ == 0) first_send_ = now_seconds();
    last_send_ = now_seconds();
    ++outstanding_;
    bytes_ += n;
  }
  totals_.messages += 1;
  totals_.bytes += n;
  agent_.send(target_.peer, target_.transfer, std::move(msg),
              [self = shared_from_this()](bool ok, const std::string& why) { self->sent(ok, why); });
}

void KvExporter::sent(bool ok, const std::string& why) {
  std::function<void()> run;
  {
    std::lock_guard lock(mu_);
    --outstanding_;
    if (!ok && error_.empty()) error_ = str("sending KV to the decode instance failed: ", why);
    if (!ok || (done_queued_ && outstanding_ == 0)) finish_locked(run);
  }
  if (run) run();
}

void KvExporter::finish_locked(std::function<void()>& run) {
  if (finished_) return;
  finished_ = true;
  if (error_.empty()) {
    const double end = now_seconds();
    totals_.transfers += 1;
    totals_.micros_total += uint64_t(std::max(0.0, end - first_send_) * 1e6);
    totals_.micros_exposed += uint64_t(std::max(0.0, end - compute_end_) * 1e6);
  } else {
    totals_.failed += 1;
  }
  run = std::move(on_complete_);
}

void KvExporter::abandon(const std::string& why) {
  std::function<void()> run;
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    if (error_.empty()) error_ = why;
    finish_locked(run);
  }
  if (run) run();
}

bool KvExporter::complete() const {
  std::lock_guard lock(mu_);
  return finished_;
}

std::string KvExporter::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

uint64_t KvExporter::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void KvExporter::set_on_complete(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_complete_ = std::move(fn);
}

}  // namespace dsinfer::serve::pd
