#include "engine/kv_transfer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "base/error.h"
#include "base/timer.h"

namespace dsinfer::engine {

KvImport::KvImport(int64_t prompt_tokens, double timeout_s)
    : prompt_tokens_(prompt_tokens), timeout_s_(timeout_s), last_heard_(now_seconds()) {}

double KvImport::deadline() const {
  std::lock_guard lock(mu_);
  return last_heard_ + timeout_s_;
}

void KvImport::touch() {
  std::lock_guard lock(mu_);
  last_heard_ = now_seconds();
}

void KvImport::reserved(const kernels::KvCacheView& cache, std::vector<int32_t> block_table) {
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kReserving) return;
    cache_ = cache;
    table_ = std::move(block_table);
    reset_rows();
    state_ = State::kReserved;
  }
  notify();
}

void KvImport::fail(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kFailed || state_ == State::kReady) return;  // decided already
    state_ = State::kFailed;
    error_ = why;
  }
  notify();
}

KvImport::State KvImport::wait_reserved(double timeout_s) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return state_ != State::kReserving; });
  return state_;
}

int64_t KvImport::rows_needed(int64_t block) const {
  const int64_t bs = cache_.spec.block_size;
  return std::min(bs, prompt_tokens_ - block * bs);
}

void KvImport::reset_rows() {
  rows_have_.assign(size_t(cache_.spec.num_layers) * table_.size(), 0);
  missing_ = int64_t(rows_have_.size());
  first_.reset();
}

bool KvImport::begin_attempt(uint32_t attempt) {
  std::lock_guard lock(mu_);
  return attempt_locked(attempt);
}

bool KvImport::attempt_locked(uint32_t attempt) {
  if (attempt < attempt_) return false;  // an older attempt's late messages: not ours any more
  if (attempt > attempt_) {
    attempt_ = attempt;
    if (state_ == State::kReserved) reset_rows();
  }
  return true;
}

bool KvImport::write_rows(uint32_t attempt, int64_t layer, int64_t block_index, int64_t rows, const uint8_t* data,
                          size_t bytes, std::string& why) {
  bool ready = false;
  {
    std::lock_guard lock(mu_);
    if (!attempt_locked(attempt) || state_ != State::kReserved) return true;
    last_heard_ = now_seconds();
    const int64_t row_bytes = cache_.spec.row_bytes();
    const int64_t blocks = int64_t(table_.size());
    if (layer < 0 || layer >= cache_.spec.num_layers || block_index < 0 || block_index >= blocks || rows <= 0 ||
        rows > rows_needed(block_index) || bytes != size_t(rows * row_bytes)) {
      why = str("KV rows outside the reservation (layer ", layer, ", block ", block_index, ", ", rows, " rows of ",
                bytes, " bytes; the reservation has ", cache_.spec.num_layers, " layers of ", blocks, " blocks for ",
                prompt_tokens_, " tokens, ", row_bytes, " bytes a row)");
      return false;
    }
    const kernels::LatentCacheView l = cache_.layer(layer);
    uint8_t* dst = static_cast<uint8_t*>(l.base) +
                   size_t(table_[size_t(block_index)]) * size_t(cache_.spec.block_size) * size_t(row_bytes);
    std::memcpy(dst, data, bytes);
    bytes_ += bytes;
    int32_t& have = rows_have_[size_t(layer) * table_.size() + size_t(block_index)];
    const bool was_complete = have >= rows_needed(block_index);
    have = std::max<int32_t>(have, int32_t(rows));
    if (!was_complete && have >= rows_needed(block_index)) --missing_;
    ready = check_ready();
  }
  if (ready) notify();
  return true;
}

void KvImport::first_token(uint32_t attempt, const FirstToken& first) {
  bool ready = false;
  {
    std::lock_guard lock(mu_);
    if (!attempt_locked(attempt) || state_ != State::kReserved) return;
    last_heard_ = now_seconds();
    first_ = first;
    ready = check_ready();
  }
  if (ready) notify();
}

// The first token may overtake the last rows (a large message completes after a small one sent
// later): ready is whichever of the two comes last. With mu_ held.
bool KvImport::check_ready() {
  if (state_ != State::kReserved || missing_ > 0 || !first_) return false;
  state_ = State::kReady;
  return true;
}

KvImport::State KvImport::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

std::string KvImport::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

FirstToken KvImport::first() const {
  std::lock_guard lock(mu_);
  check(first_.has_value(), "the first token has not arrived");
  return *first_;
}

uint64_t KvImport::bytes_written() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void KvImport::set_on_change(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(fn);
}

void KvImport::notify() {
  cv_.notify_all();
  std::function<void()> fn;
  {
    std::lock_guard lock(mu_);
    fn = on_change_;
  }
  if (fn) fn();
}

}  // namespace dsinfer::engine
