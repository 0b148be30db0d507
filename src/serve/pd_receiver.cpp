#include "serve/pd_receiver.h"

#include "base/error.h"
#include "base/log.h"
#include "serve/pd_messages.h"

namespace dsinfer::serve::pd {

void KvReceiver::expect(uint64_t transfer, const std::shared_ptr<engine::KvImport>& import) {
  std::lock_guard lock(mu_);
  // Forget the imports nobody holds any more (finished, cancelled, expired).
  for (auto it = imports_.begin(); it != imports_.end();) it = it->second.expired() ? imports_.erase(it) : std::next(it);
  imports_[transfer] = import;
}

void KvReceiver::forget(uint64_t transfer) {
  std::lock_guard lock(mu_);
  imports_.erase(transfer);
}

std::shared_ptr<engine::KvImport> KvReceiver::find(uint64_t transfer) {
  std::lock_guard lock(mu_);
  auto it = imports_.find(transfer);
  return it == imports_.end() ? nullptr : it->second.lock();
}

void KvReceiver::on_message(uint64_t tag, std::vector<uint8_t>&& msg) {
  totals_.messages += 1;
  totals_.bytes += msg.size();
  MessageHead head;
  try {
    head = decode_head(msg);
  } catch (const Error& e) {
    totals_.malformed += 1;
    log_warn("dropped a KV transfer message: ", e.what());
    return;
  }
  std::shared_ptr<engine::KvImport> import = head.transfer == tag ? find(head.transfer) : nullptr;
  if (!import) {
    totals_.unexpected += 1;
    return;
  }
  try {
    if (head.kind == MessageKind::kAlive) {
      if (import->begin_attempt(head.attempt)) import->touch();
      return;
    }
    if (head.kind == MessageKind::kDone) {
      import->first_token(head.attempt, decode_done(msg).first);
      return;
    }
    const LayerMessage m = decode_layer(msg);
    for (const BlockRows& b : m.blocks) {
      if (block_checksum(m.head, m.layer, b.block_index, b.rows, b.data, b.bytes) != b.checksum) {
        totals_.checksum_failures += 1;
        import->fail(str("KV block checksum mismatch (layer ", m.layer, ", block ", b.block_index, ", attempt ",
                         m.head.attempt, "): the transfer was corrupted"));
        return;
      }
      std::string why;
      if (!import->write_rows(m.head.attempt, m.layer, b.block_index, b.rows, b.data, b.bytes, why)) {
        totals_.malformed += 1;
        import->fail(why);
        return;
      }
    }
  } catch (const Error& e) {
    totals_.malformed += 1;
    import->fail(str("malformed KV transfer message: ", e.what()));
  }
}

}  // namespace dsinfer::serve::pd
