#include "serve/pd_messages.h"

#include <algorithm>
#include <cstring>

#include "base/byte_stream.h"
#include "base/error.h"
#include "base/hash.h"
#include "engine/engine_options.h"

namespace dsinfer::serve::pd {

namespace {

constexpr uint32_t kMagic = 0x564b5344;  // "DSKV"

void put_head(ByteWriter& w, const MessageHead& h) {
  w.put(kMagic);
  w.put(uint32_t(h.kind));
  w.put(h.transfer);
  w.put(h.attempt);
}

MessageHead get_head(ByteReader& r) {
  check(r.get<uint32_t>() == kMagic, "not a KV transfer message (bad magic)");
  MessageHead h;
  const uint32_t kind = r.get<uint32_t>();
  check(kind >= uint32_t(MessageKind::kLayer) && kind <= uint32_t(MessageKind::kAlive),
        "unknown KV transfer message kind ", kind);
  h.kind = MessageKind(kind);
  h.transfer = r.get<uint64_t>();
  h.attempt = r.get<uint32_t>();
  return h;
}

uint64_t done_checksum(const uint8_t* data, size_t bytes) { return checksum_bytes(0x646f6e65ull, data, bytes); }

}  // namespace

uint64_t block_checksum(const MessageHead& head, uint32_t layer, uint32_t block_index, uint32_t rows,
                        const uint8_t* data, size_t bytes) {
  const uint64_t seed = mix64(head.transfer ^ mix64(uint64_t(head.attempt) << 32 | layer) ^
                              mix64(uint64_t(block_index) << 32 | rows));
  return checksum_bytes(seed, data, bytes);
}

std::vector<uint8_t> encode_layer(const MessageHead& head, uint32_t layer, const kernels::LatentCacheView& cache,
                                  const int32_t* table, int64_t first_block, int64_t last_block, int64_t prompt_rows) {
  const int64_t bs = cache.block_size, row_bytes = cache.row_bytes();
  const int64_t n = last_block - first_block + 1;
  check(n > 0, "a layer message needs at least one block");
  int64_t payload = 0;
  for (int64_t b = first_block; b <= last_block; ++b) payload += std::min(bs, prompt_rows - b * bs) * row_bytes;
  std::vector<uint8_t> out;
  out.reserve(size_t(64 + n * 16 + payload));
  ByteWriter w(out);
  put_head(w, head);
  w.put(layer);
  w.put(uint32_t(row_bytes));
  w.put(uint32_t(n));
  // The block table of contents first, then the rows in the same order.
  const size_t toc = out.size();
  out.resize(toc + size_t(n) * 16);
  size_t at = out.size();
  out.resize(at + size_t(payload));
  for (int64_t b = first_block; b <= last_block; ++b) {
    const uint32_t rows = uint32_t(std::min(bs, prompt_rows - b * bs));
    const size_t bytes = size_t(rows) * size_t(row_bytes);
    const uint8_t* src = static_cast<const uint8_t*>(cache.base) + size_t(table[b]) * size_t(bs) * size_t(row_bytes);
    std::memcpy(out.data() + at, src, bytes);
    const uint64_t sum = block_checksum(head, layer, uint32_t(b), rows, out.data() + at, bytes);
    uint8_t* entry = out.data() + toc + size_t(b - first_block) * 16;
    const uint32_t index = uint32_t(b);
    std::memcpy(entry, &index, 4);
    std::memcpy(entry + 4, &rows, 4);
    std::memcpy(entry + 8, &sum, 8);
    at += bytes;
  }
  return out;
}

std::vector<uint8_t> encode_done(const MessageHead& head, const engine::FirstToken& first) {
  std::vector<uint8_t> out;
  ByteWriter w(out);
  put_head(w, head);
  w.put(first.id);
  w.put(first.rng);
  w.put(first.cached_tokens);
  w.put(first.disk_cached_tokens);
  w.put(uint32_t(first.drafts.size()));
  for (int32_t d : first.drafts) w.put(d);
  w.put(uint8_t(first.logprob.has_value()));
  if (first.logprob) {
    w.put(first.logprob->id);
    w.put(first.logprob->logprob);
    w.put(uint32_t(first.logprob->top.size()));
    for (const auto& [id, logprob] : first.logprob->top) {
      w.put(id);
      w.put(logprob);
    }
  }
  const uint64_t sum = done_checksum(out.data(), out.size());
  w.put(sum);
  return out;
}

std::vector<uint8_t> encode_alive(const MessageHead& head) {
  std::vector<uint8_t> out;
  ByteWriter w(out);
  put_head(w, {MessageKind::kAlive, head.transfer, head.attempt});
  return out;
}

MessageHead decode_head(const std::vector<uint8_t>& msg) {
  ByteReader r(msg);
  return get_head(r);
}

LayerMessage decode_layer(const std::vector<uint8_t>& msg) {
  ByteReader r(msg);
  LayerMessage m;
  m.head = get_head(r);
  check(m.head.kind == MessageKind::kLayer, "expected a layer message");
  m.layer = r.get<uint32_t>();
  m.row_bytes = r.get<uint32_t>();
  const uint32_t n = r.get<uint32_t>();
  const size_t toc = msg.size() - size_t(r.remaining());
  check(uint64_t(n) * 16 <= r.remaining(), "a layer message is shorter than its block list");
  size_t at = toc + size_t(n) * 16;
  m.blocks.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    BlockRows& b = m.blocks[i];
    const uint8_t* entry = msg.data() + toc + size_t(i) * 16;
    std::memcpy(&b.block_index, entry, 4);
    std::memcpy(&b.rows, entry + 4, 4);
    std::memcpy(&b.checksum, entry + 8, 8);
    b.bytes = size_t(b.rows) * size_t(m.row_bytes);
    check(b.bytes <= msg.size() - at, "a layer message is shorter than its rows");
    b.data = msg.data() + at;
    at += b.bytes;
  }
  check(at == msg.size(), "a layer message has ", msg.size() - at, " bytes past its rows");
  return m;
}

DoneMessage decode_done(const std::vector<uint8_t>& msg) {
  check(msg.size() >= 8, "a done message is too short");
  uint64_t sum;
  std::memcpy(&sum, msg.data() + msg.size() - 8, 8);
  check(sum == done_checksum(msg.data(), msg.size() - 8), "the done message's checksum does not match");
  ByteReader r(msg.data(), msg.size() - 8);
  DoneMessage m;
  m.head = get_head(r);
  check(m.head.kind == MessageKind::kDone, "expected a done message");
  m.first.id = r.get<int32_t>();
  m.first.rng = r.get<uint64_t>();
  m.first.cached_tokens = r.get<int64_t>();
  m.first.disk_cached_tokens = r.get<int64_t>();
  const uint32_t drafts = r.get<uint32_t>();
  check(drafts <= uint32_t(engine::EngineOptions::kMaxDraftTokens), "a done message carries ", drafts,
        " drafts; at most ", engine::EngineOptions::kMaxDraftTokens, " are made");
  for (uint32_t i = 0; i < drafts; ++i) m.first.drafts.push_back(r.get<int32_t>());
  if (r.get<uint8_t>()) {
    engine::TokenLogprob lp;
    lp.id = r.get<int32_t>();
    lp.logprob = r.get<float>();
    const uint32_t top = r.get<uint32_t>();
    check(top <= r.remaining() / 8, "a done message is shorter than its logprobs");
    for (uint32_t i = 0; i < top; ++i) {
      const int32_t id = r.get<int32_t>();
      lp.top.emplace_back(id, r.get<float>());
    }
    m.first.logprob = std::move(lp);
  }
  check(r.done(), "a done message has bytes past its end");
  return m;
}

}  // namespace dsinfer::serve::pd
