#include "engine/wire.h"

namespace dsinfer::engine {

void write_params(ByteWriter& w, const SamplingParams& p) {
  w.put(p.temperature);
  w.put(p.top_p);
  w.put(p.top_k);
  w.put(p.min_p);
  w.put(uint8_t(p.seed.has_value()));
  w.put(p.seed.value_or(0));
  w.put(p.frequency_penalty);
  w.put(p.presence_penalty);
  w.put(p.repetition_penalty);
  w.put(uint64_t(p.stop.size()));
  for (const std::string& s : p.stop) w.put_string(s);
  w.put_vector(p.stop_token_ids);
  w.put(p.max_tokens);
  w.put(uint8_t(p.ignore_eos));
  w.put(p.logprobs);
  w.put(p.n);
  w.put_vector(p.forced_tokens);
  w.put(uint8_t(p.return_logits));
}

SamplingParams read_params(ByteReader& r) {
  SamplingParams p;
  p.temperature = r.get<double>();
  p.top_p = r.get<double>();
  p.top_k = r.get<int64_t>();
  p.min_p = r.get<double>();
  const bool seeded = r.get<uint8_t>();
  const uint64_t seed = r.get<uint64_t>();
  if (seeded) p.seed = seed;
  p.frequency_penalty = r.get<double>();
  p.presence_penalty = r.get<double>();
  p.repetition_penalty = r.get<double>();
  const uint64_t stops = r.get<uint64_t>();
  check(stops <= kMaxStopStrings, "a request message holds ", stops, " stop strings");
  for (uint64_t i = 0; i < stops; ++i) p.stop.push_back(r.get_string());
  p.stop_token_ids = r.get_vector<int32_t>();
  p.max_tokens = r.get<int64_t>();
  p.ignore_eos = r.get<uint8_t>();
  p.logprobs = r.get<int64_t>();
  p.n = r.get<int64_t>();
  p.forced_tokens = r.get_vector<int32_t>();
  p.return_logits = r.get<uint8_t>();
  return p;
}

void write_update(ByteWriter& w, const ChoiceUpdate& u) {
  w.put(int32_t(u.index));
  w.put_string(u.text);
  w.put_vector(u.token_ids);
  w.put(uint64_t(u.logprobs.size()));
  for (const TokenLogprob& lp : u.logprobs) {
    w.put(lp.id);
    w.put(lp.logprob);
    w.put(uint64_t(lp.top.size()));
    for (const auto& [id, logprob] : lp.top) {
      w.put(id);
      w.put(logprob);
    }
  }
  w.put(int32_t(u.finish));
  w.put_vector(u.logits);
  w.put(u.logits_rows);
  w.put(u.logits_first_position);
}

ChoiceUpdate read_update(ByteReader& r) {
  ChoiceUpdate u;
  u.index = r.get<int32_t>();
  u.text = r.get_string();
  u.token_ids = r.get_vector<int32_t>();
  const uint64_t n = r.get<uint64_t>();
  check(n <= u.token_ids.size(), "an update message holds more logprobs than tokens");
  for (uint64_t i = 0; i < n; ++i) {
    TokenLogprob lp;
    lp.id = r.get<int32_t>();
    lp.logprob = r.get<float>();
    const uint64_t top = r.get<uint64_t>();
    check(top <= uint64_t(kMaxTopLogprobs) + 1, "an update message holds ", top, " top logprobs");
    for (uint64_t k = 0; k < top; ++k) {
      const int32_t id = r.get<int32_t>();
      lp.top.emplace_back(id, r.get<float>());
    }
    u.logprobs.push_back(std::move(lp));
  }
  const int32_t finish = r.get<int32_t>();
  check(finish >= int32_t(FinishReason::kNone) && finish <= int32_t(FinishReason::kAbort), "bad finish reason ", finish);
  u.finish = FinishReason(finish);
  u.logits = r.get_vector<float>();
  u.logits_rows = r.get<int64_t>();
  u.logits_first_position = r.get<int64_t>();
  return u;
}

}  // namespace dsinfer::engine
