// The KV transfer's messages and their receiving end: what the prefill side encodes is what the
// decode side writes, and nothing corrupt, misplaced or foreign is ever written.
#include "serve/pd_messages.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <thread>

#include "base/error.h"
#include "base/timer.h"
#include "engine/engine_options.h"
#include "serve/pd_receiver.h"

namespace dsinfer::serve::pd {
namespace {

// A small cache (2 layers, 8 blocks of 4 rows) holding a recognisable byte per (layer, block, row).
struct Cache {
  kernels::KvCacheSpec spec;
  std::vector<uint8_t> bytes;
  kernels::KvCacheView view;
  explicit Cache(uint8_t salt) {
    spec.num_layers = 2;
    spec.dim = 8;
    spec.rope_dim = 4;
    spec.dtype = DType::kF32;
    spec.block_size = 4;
    bytes.resize(size_t(spec.num_layers * 8 * spec.block_size * spec.row_bytes()));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 31 + salt);
    view = {bytes.data(), spec, 8};
  }
  const uint8_t* row(int64_t layer, int32_t block, int64_t r) const {
    const size_t rb = size_t(spec.row_bytes());
    return bytes.data() + size_t(layer) * 8 * 4 * rb + (size_t(block) * 4 + size_t(r)) * rb;
  }
};

TEST(PdMessages, LayerMessageRoundTripsWithPartialLastBlock) {
  Cache c(1);
  const int32_t table[] = {6, 1, 3};
  const MessageHead head{MessageKind::kLayer, 0x1234, 2};
  // Prompt of 10 rows: blocks 1 (4 rows) and 2 (2 rows) of layer 1.
  const auto msg = encode_layer(head, 1, c.view.layer(1), table, 1, 2, 10);
  EXPECT_EQ(decode_head(msg).transfer, 0x1234u);
  const LayerMessage m = decode_layer(msg);
  EXPECT_EQ(m.head.attempt, 2u);
  EXPECT_EQ(m.layer, 1u);
  EXPECT_EQ(m.row_bytes, uint32_t(c.spec.row_bytes()));
  ASSERT_EQ(m.blocks.size(), 2u);
  EXPECT_EQ(m.blocks[0].block_index, 1u);
  EXPECT_EQ(m.blocks[0].rows, 4u);
  EXPECT_EQ(m.blocks[1].block_index, 2u);
  EXPECT_EQ(m.blocks[1].rows, 2u);
  EXPECT_EQ(std::memcmp(m.blocks[0].data, c.row(1, 1, 0), m.blocks[0].bytes), 0);  // block id table[1] = 1
  EXPECT_EQ(std::memcmp(m.blocks[1].data, c.row(1, 3, 0), m.blocks[1].bytes), 0);  // table[2] = 3
  for (const auto& b : m.blocks)
    EXPECT_EQ(block_checksum(m.head, m.layer, b.block_index, b.rows, b.data, b.bytes), b.checksum);
}

TEST(PdMessages, ChecksumsNameTheirPlace) {
  Cache c(2);
  const int32_t table[] = {0};
  const MessageHead head{MessageKind::kLayer, 7, 0};
  const auto msg = encode_layer(head, 0, c.view.layer(0), table, 0, 0, 4);  // the blocks point into it
  const LayerMessage m = decode_layer(msg);
  const BlockRows& b = m.blocks[0];
  // The same bytes claimed for another layer, block, row count, transfer or attempt do not verify.
  EXPECT_NE(block_checksum(m.head, 1, 0, 4, b.data, b.bytes), b.checksum);
  EXPECT_NE(block_checksum(m.head, 0, 1, 4, b.data, b.bytes), b.checksum);
  EXPECT_NE(block_checksum(m.head, 0, 0, 3, b.data, b.bytes), b.checksum);
  EXPECT_NE(block_checksum({MessageKind::kLayer, 8, 0}, 0, 0, 4, b.data, b.bytes), b.checksum);
  EXPECT_NE(block_checksum({MessageKind::kLayer, 7, 1}, 0, 0, 4, b.data, b.bytes), b.checksum);
}

TEST(PdMessages, DoneMessageRoundTripsAndRefusesCorruption) {
  engine::FirstToken f;
  f.id = 4242;
  f.rng = 0xfeedbeefcafef00dull;
  f.cached_tokens = 128;
  f.disk_cached_tokens = 64;
  f.logprob = engine::TokenLogprob{4242, -0.5f, {{4242, -0.5f}, {17, -1.25f}}};
  f.drafts = {77, 78};
  const auto msg = encode_done({MessageKind::kDone, 99, 3}, f);
  const DoneMessage d = decode_done(msg);
  EXPECT_EQ(d.head.transfer, 99u);
  EXPECT_EQ(d.head.attempt, 3u);
  EXPECT_EQ(d.first.id, 4242);
  EXPECT_EQ(d.first.rng, f.rng);
  EXPECT_EQ(d.first.cached_tokens, 128);
  EXPECT_EQ(d.first.disk_cached_tokens, 64);
  ASSERT_TRUE(d.first.logprob.has_value());
  EXPECT_EQ(d.first.logprob->top, f.logprob->top);
  EXPECT_EQ(d.first.drafts, f.drafts);
  for (size_t i = 8; i < msg.size(); i += 5) {  // past the magic and kind
    auto bad = msg;
    bad[i] ^= 0x40;
    EXPECT_THROW(decode_done(bad), dsinfer::Error) << "byte " << i;
  }
}

// More drafts than any engine makes, checksummed as if sent: refused, not read.
TEST(PdMessages, ADoneMessageWithMoreDraftsThanAnEngineMakesIsRefused) {
  engine::FirstToken f;
  f.drafts.assign(size_t(engine::EngineOptions::kMaxDraftTokens) + 1, 5);
  try {
    decode_done(encode_done({MessageKind::kDone, 1, 0}, f));
    ADD_FAILURE() << "accepted " << f.drafts.size() << " drafts";
  } catch (const dsinfer::Error& e) {
    EXPECT_NE(std::string(e.what()).find("drafts"), std::string::npos) << e.what();
  }
  f.drafts.pop_back();
  EXPECT_EQ(decode_done(encode_done({MessageKind::kDone, 1, 0}, f)).first.drafts, f.drafts);
}

TEST(PdMessages, MalformedMessagesAreErrorsNotReads) {
  Cache c(3);
  const int32_t table[] = {0, 1};
  const auto msg = encode_layer({MessageKind::kLayer, 1, 0}, 0, c.view.layer(0), table, 0, 1, 8);
  for (size_t cut : {size_t(0), size_t(3), size_t(20), size_t(30), msg.size() - 1}) {
    std::vector<uint8_t> shorter(msg.begin(), msg.begin() + long(cut));
    EXPECT_THROW(decode_layer(shorter), dsinfer::Error) << cut;
  }
  auto longer = msg;
  longer.push_back(0);
  EXPECT_THROW(decode_layer(longer), dsinfer::Error);
  std::vector<uint8_t> foreign(64, 0xab);
  EXPECT_THROW(decode_head(foreign), dsinfer::Error);
}

// The receiver writes verified blocks into the import's reserved blocks, and nothing else.
class Receiving : public ::testing::Test {
 protected:
  void SetUp() override {
    import_ = std::make_shared<engine::KvImport>(6, 60.0);  // blocks: 4 + 2 rows
    import_->reserved(dst_.view, {7, 5});
    std::fill(dst_.bytes.begin(), dst_.bytes.end(), 0);
    receiver_.expect(kTransfer, import_);
  }
  std::vector<uint8_t> layer(int64_t l, uint32_t attempt = 0) const {
    return encode_layer({MessageKind::kLayer, kTransfer, attempt}, uint32_t(l), src_.view.layer(l), src_table_, 0, 1, 6);
  }
  static constexpr uint64_t kTransfer = 0xabcdef;
  Cache src_{9}, dst_{0};
  const int32_t src_table_[2] = {2, 4};
  std::shared_ptr<engine::KvImport> import_;
  KvReceiver receiver_;
};

TEST_F(Receiving, VerifiedRowsLandAndTheImportBecomesReady) {
  receiver_.on_message(kTransfer, layer(0));
  receiver_.on_message(kTransfer, layer(1));
  receiver_.on_message(kTransfer, encode_done({MessageKind::kDone, kTransfer, 0}, {11, 22, std::nullopt, 0, 0}));
  ASSERT_EQ(import_->state(), engine::KvImport::State::kReady) << import_->error();
  const size_t rb = size_t(src_.spec.row_bytes());
  for (int l = 0; l < 2; ++l) {
    EXPECT_EQ(std::memcmp(dst_.row(l, 7, 0), src_.row(l, 2, 0), 4 * rb), 0);  // block 0: 4 rows
    EXPECT_EQ(std::memcmp(dst_.row(l, 5, 0), src_.row(l, 4, 0), 2 * rb), 0);  // block 1: 2 rows
    EXPECT_EQ(dst_.row(l, 5, 2)[0], 0);                                       // not past the prompt
  }
  EXPECT_EQ(import_->first().id, 11);
  EXPECT_EQ(receiver_.totals().checksum_failures.load(), 0u);
}

TEST_F(Receiving, ACorruptBlockFailsTheImportAndIsNeverWritten) {
  auto msg = layer(0);
  msg.back() ^= 1;  // the last row of the last block
  receiver_.on_message(kTransfer, std::move(msg));
  EXPECT_EQ(import_->state(), engine::KvImport::State::kFailed);
  EXPECT_NE(import_->error().find("checksum"), std::string::npos) << import_->error();
  EXPECT_EQ(receiver_.totals().checksum_failures.load(), 1u);
  EXPECT_EQ(dst_.row(0, 5, 0)[0], 0);
  EXPECT_EQ(import_->bytes_written(), 4 * uint64_t(src_.spec.row_bytes()));  // block 0 came first and was sound
}

TEST_F(Receiving, UnknownTransfersAndForeignBytesAreDroppedAndCounted) {
  receiver_.on_message(kTransfer + 1, encode_layer({MessageKind::kLayer, kTransfer + 1, 0}, 0, src_.view.layer(0),
                                                   src_table_, 0, 1, 6));
  receiver_.on_message(kTransfer, std::vector<uint8_t>(40, 0x11));
  receiver_.on_message(kTransfer + 5, layer(0));  // a tag that does not match the message's transfer
  EXPECT_EQ(receiver_.totals().unexpected.load(), 2u);
  EXPECT_EQ(receiver_.totals().malformed.load(), 1u);
  EXPECT_EQ(import_->state(), engine::KvImport::State::kReserved);
  EXPECT_EQ(import_->bytes_written(), 0u);
}

TEST_F(Receiving, RowsThatDoNotFitTheReservationFailIt) {
  // A prefill side that believes the prompt is longer (8 rows: block 1 full).
  receiver_.on_message(kTransfer, encode_layer({MessageKind::kLayer, kTransfer, 0}, 0, src_.view.layer(0), src_table_,
                                               1, 1, 8));
  EXPECT_EQ(import_->state(), engine::KvImport::State::kFailed);
  EXPECT_NE(import_->error().find("outside the reservation"), std::string::npos) << import_->error();
}

TEST_F(Receiving, AHeartbeatPostponesTheDeadlineAndWritesNothing) {
  const double before = import_->deadline();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  receiver_.on_message(kTransfer, encode_alive({MessageKind::kAlive, kTransfer, 0}));
  EXPECT_GT(import_->deadline(), before + 0.015);
  EXPECT_EQ(decode_head(encode_alive({MessageKind::kLayer, 5, 1})).kind, MessageKind::kAlive);
  EXPECT_EQ(import_->bytes_written(), 0u);
  EXPECT_EQ(import_->state(), engine::KvImport::State::kReserved);
}

TEST_F(Receiving, AReleasedImportNoLongerReceives) {
  import_.reset();  // the request ended; only the receiver's weak reference is left
  receiver_.on_message(kTransfer, layer(0));
  EXPECT_EQ(receiver_.totals().unexpected.load(), 1u);
}

}  // namespace
}  // namespace dsinfer::serve::pd
