#include "engine/run_request.h"

#include "base/error.h"
#include "base/timer.h"

namespace dsinfer::engine {

RequestResult run_request(Engine& engine, std::vector<int32_t> prompt, const SamplingParams& params) {
  RequestResult r;
  const size_t n = size_t(params.n);
  r.tokens.resize(n);
  r.text.resize(n);
  r.finish.assign(n, FinishReason::kNone);
  const double start = now_seconds();
  std::shared_ptr<RequestStream> stream = engine.submit(std::move(prompt), params);
  const int64_t vocab = engine.config().vocab_size;
  std::vector<ChoiceUpdate> ups;
  bool done = false;
  while (!done) {
    ups.clear();
    done = stream->wait(ups, 1.0);
    for (ChoiceUpdate& u : ups) {
      const size_t i = size_t(u.index);
      check(i < n, "update for choice ", u.index, " of a request with ", n);
      if (!u.token_ids.empty() && r.first_token_s == 0) r.first_token_s = now_seconds() - start;
      r.tokens[i].insert(r.tokens[i].end(), u.token_ids.begin(), u.token_ids.end());
      r.text[i] += u.text;
      if (u.finish != FinishReason::kNone) r.finish[i] = u.finish;
      if (i == 0 && u.logits_rows > 0) {
        check(u.logits_first_position == r.logits_rows, "logits rows arrived out of order");
        r.logits.insert(r.logits.end(), u.logits.begin(), u.logits.begin() + u.logits_rows * vocab);
        r.logits_rows += u.logits_rows;
      }
    }
  }
  r.done_s = now_seconds() - start;
  r.usage = stream->usage();
  r.error = stream->error();
  return r;
}

}  // namespace dsinfer::engine
