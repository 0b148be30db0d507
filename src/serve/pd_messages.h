// The messages a prefill instance sends a decode instance over UCX (docs/serving.md, "KV
// transfer"), one UCX tag per transfer (the transfer id the decode instance chose):
//   layer message: one layer's latent rows of some blocks of the prompt, each block with its
//                  index in the prompt, its row count and a checksum (seeded with the transfer,
//                  attempt, layer, block and rows, so a block put in the wrong place fails too);
//   done message:  the first token the prefill side sampled, its random state and logprobs,
//                  the prompt's prefix-cache hit (and how much of it came from disk), and the
//                  MTP module's drafts after the first token (none without --speculative);
//                  checksummed as a whole;
//   alive message: the head alone, a heartbeat while the prompt waits or computes (the decode
//                  side's --kv-transfer-timeout is a bound on silence, not on queueing).
// Rows travel in the cache's own format: an FP8 cache's 656-byte rows as they are (1.76x fewer
// bytes than bf16). Both ends run the same build (the router checks the KV layout), so the
// encoding is the host's (little-endian x86-64/aarch64).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/kv_transfer.h"
#include "kernels/latent_cache.h"

namespace dsinfer::serve::pd {

enum class MessageKind : uint32_t { kLayer = 1, kDone = 2, kAlive = 3 };

struct MessageHead {
  MessageKind kind = MessageKind::kLayer;
  uint64_t transfer = 0;
  uint32_t attempt = 0;
};

// One block of a layer message, as decoded: rows bytes at `data` (inside the message).
struct BlockRows {
  uint32_t block_index = 0, rows = 0;
  uint64_t checksum = 0;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
};

struct LayerMessage {
  MessageHead head;
  uint32_t layer = 0, row_bytes = 0;
  std::vector<BlockRows> blocks;
};

struct DoneMessage {
  MessageHead head;
  engine::FirstToken first;
};

uint64_t block_checksum(const MessageHead& head, uint32_t layer, uint32_t block_index, uint32_t rows,
                        const uint8_t* data, size_t bytes);

// Layer `layer`'s rows of prompt blocks [first_block, last_block], block b holding
// min(block_size, prompt_rows - b * block_size) rows, read from `cache` through `table`.
std::vector<uint8_t> encode_layer(const MessageHead& head, uint32_t layer, const kernels::LatentCacheView& cache,
                                  const int32_t* table, int64_t first_block, int64_t last_block, int64_t prompt_rows);
std::vector<uint8_t> encode_done(const MessageHead& head, const engine::FirstToken& first);
std::vector<uint8_t> encode_alive(const MessageHead& head);

// Reads the head of any message; throws Error for a message that is not one of ours.
MessageHead decode_head(const std::vector<uint8_t>& msg);
// Throws Error for a malformed message (short, bad counts). Checksums are the caller's to verify
// (block_checksum), so it can name the block that failed. The blocks point into `msg`.
LayerMessage decode_layer(const std::vector<uint8_t>& msg);
// Throws Error for a malformed or corrupt message.
DoneMessage decode_done(const std::vector<uint8_t>& msg);

}  // namespace dsinfer::serve::pd
