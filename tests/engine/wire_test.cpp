// The engine's messages between ranks round-trip every field, and a short or corrupt message is
// an Error, never a read past the buffer.
#include "engine/wire.h"

#include <gtest/gtest.h>

namespace dsinfer::engine {
namespace {

SamplingParams every_field_set() {
  SamplingParams p;
  p.temperature = 0.7;
  p.top_p = 0.9;
  p.top_k = 40;
  p.min_p = 0.05;
  p.seed = 12345;
  p.frequency_penalty = 0.5;
  p.presence_penalty = -0.25;
  p.repetition_penalty = 1.1;
  p.stop = {"\n\n", "END", ""};
  p.stop_token_ids = {7, 9};
  p.max_tokens = 77;
  p.ignore_eos = true;
  p.logprobs = 3;
  p.n = 2;
  p.forced_tokens = {1, 2, 3};
  p.return_logits = true;
  return p;
}

TEST(Wire, SamplingParamsRoundTripEveryField) {
  const SamplingParams p = every_field_set();
  std::vector<uint8_t> bytes;
  ByteWriter w(bytes);
  write_params(w, p);
  ByteReader r(bytes);
  const SamplingParams q = read_params(r);
  EXPECT_TRUE(r.done());
  EXPECT_EQ(q.temperature, p.temperature);
  EXPECT_EQ(q.top_p, p.top_p);
  EXPECT_EQ(q.top_k, p.top_k);
  EXPECT_EQ(q.min_p, p.min_p);
  EXPECT_EQ(q.seed, p.seed);
  EXPECT_EQ(q.frequency_penalty, p.frequency_penalty);
  EXPECT_EQ(q.presence_penalty, p.presence_penalty);
  EXPECT_EQ(q.repetition_penalty, p.repetition_penalty);
  EXPECT_EQ(q.stop, p.stop);
  EXPECT_EQ(q.stop_token_ids, p.stop_token_ids);
  EXPECT_EQ(q.max_tokens, p.max_tokens);
  EXPECT_EQ(q.ignore_eos, p.ignore_eos);
  EXPECT_EQ(q.logprobs, p.logprobs);
  EXPECT_EQ(q.n, p.n);
  EXPECT_EQ(q.forced_tokens, p.forced_tokens);
  EXPECT_EQ(q.return_logits, p.return_logits);
  // An unseeded request stays unseeded.
  SamplingParams unseeded;
  bytes.clear();
  write_params(w, unseeded);
  ByteReader r2(bytes);
  EXPECT_FALSE(read_params(r2).seed.has_value());
}

TEST(Wire, ChoiceUpdatesAndUsageRoundTrip) {
  ChoiceUpdate u;
  u.index = 3;
  u.text = "héllo\n";
  u.token_ids = {10, 11};
  u.logprobs = {{10, -0.5f, {{10, -0.5f}, {4, -1.25f}}}, {11, -2.0f, {}}};
  u.finish = FinishReason::kLength;
  u.logits = {0.5f, -1.5f, 2.0f, 3.0f};
  u.logits_rows = 2;
  u.logits_first_position = 17;
  Usage usage{100, 64, 9, 32};
  std::vector<uint8_t> bytes;
  ByteWriter w(bytes);
  write_update(w, u);
  w.put(usage);
  ByteReader r(bytes);
  const ChoiceUpdate v = read_update(r);
  const Usage back = r.get<Usage>();
  EXPECT_TRUE(r.done());
  EXPECT_EQ(v.index, u.index);
  EXPECT_EQ(v.text, u.text);
  EXPECT_EQ(v.token_ids, u.token_ids);
  ASSERT_EQ(v.logprobs.size(), 2u);
  EXPECT_EQ(v.logprobs[0].id, 10);
  EXPECT_EQ(v.logprobs[0].logprob, -0.5f);
  EXPECT_EQ(v.logprobs[0].top, u.logprobs[0].top);
  EXPECT_TRUE(v.logprobs[1].top.empty());
  EXPECT_EQ(v.finish, FinishReason::kLength);
  EXPECT_EQ(v.logits, u.logits);
  EXPECT_EQ(v.logits_rows, 2);
  EXPECT_EQ(v.logits_first_position, 17);
  EXPECT_EQ(back.prompt_tokens, 100);
  EXPECT_EQ(back.cached_tokens, 64);
  EXPECT_EQ(back.completion_tokens, 9);
  EXPECT_EQ(back.disk_cached_tokens, 32);
}

TEST(Wire, TruncatedOrCorruptMessagesAreErrors) {
  std::vector<uint8_t> bytes;
  ByteWriter w(bytes);
  write_params(w, every_field_set());
  for (size_t cut : {size_t(0), size_t(5), bytes.size() / 2, bytes.size() - 1}) {
    ByteReader r(bytes.data(), cut);
    EXPECT_THROW(read_params(r), Error) << "cut at " << cut;
  }
  // A list that claims more elements than the message holds.
  std::vector<uint8_t> lie;
  ByteWriter lw(lie);
  lw.put(uint64_t(1) << 60);
  ByteReader lr(lie);
  EXPECT_THROW(lr.get_vector<int32_t>(), Error);
  // A finish reason outside the enum.
  ChoiceUpdate u;
  std::vector<uint8_t> b2;
  ByteWriter w2(b2);
  write_update(w2, u);
  const size_t finish_at = 4 + 8 + 8 + 8;  // index, text, token_ids, logprobs counts
  b2[finish_at] = 99;
  ByteReader r2(b2);
  EXPECT_THROW(read_update(r2), Error);
}

}  // namespace
}  // namespace dsinfer::engine
