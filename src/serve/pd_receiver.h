// A decode instance's side of the KV transfers: the UCX agent's receiver. Each message is matched
// to the import it belongs to (by transfer id), its blocks' checksums are verified, and only then
// are the rows written into the reserved blocks (engine::KvImport). A corrupt block, a malformed
// message or rows that do not fit the reservation fail that import, never write wrong KV; a
// message for an unknown transfer (an expired or cancelled one) is dropped and counted.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/kv_transfer.h"

namespace dsinfer::serve::pd {

struct ReceiveTotals {
  std::atomic<uint64_t> messages{0}, bytes{0}, checksum_failures{0}, malformed{0}, unexpected{0};
};

class KvReceiver {
 public:

  // Rows for `transfer` go to `import` from now on, until it is released (the import's owner
  // dropping it is enough).
  void expect(uint64_t transfer, const std::shared_ptr<engine::KvImport>& import);
  void forget(uint64_t transfer);
  const ReceiveTotals& totals() const { return totals_; }

  // One message, as the transport delivers it (the UCX agent's receiver calls this).
  void on_message(uint64_t tag, std::vector<uint8_t>&& msg);

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, std::weak_ptr<engine::KvImport>> imports_;
  ReceiveTotals totals_;

  std::shared_ptr<engine::KvImport> find(uint64_t transfer);
};

}  // namespace dsinfer::serve::pd
