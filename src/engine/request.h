// A request as the engine sees it, and the stream through which the engine reports back to
// whoever submitted it (an HTTP handler thread). The engine's step thread pushes ChoiceUpdates;
// the owner waits for them, or is told by a listener. docs/serving.md has the request state table.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <string_view>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/sampling_params.h"

namespace dsinfer::engine {

enum class FinishReason { kNone, kStop, kLength, kAbort };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "abort"; "" for kNone

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

// New output of one choice since its last update.
struct ChoiceUpdate {
  int index = 0;
  std::string text;                 // newly complete text (stop strings never included)
  std::vector<int32_t> token_ids;   // tokens sampled in this update
  std::vector<TokenLogprob> logprobs;  // one per token when logprobs were asked for
  FinishReason finish = FinishReason::kNone;
  // SamplingParams::return_logits only: logits rows [rows, vocab] computed since the last update
  // (prompt positions in order, then one per generated token), and the first position's index.
  std::vector<float> logits;
  int64_t logits_rows = 0, logits_first_position = 0;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;       // prompt tokens whose KV came from the prefix cache
  int64_t completion_tokens = 0;   // over all choices
  int64_t disk_cached_tokens = 0;  // of cached_tokens, those the disk tier loaded (docs/serving.md)
};

// One pending update per choice: what the engine reports is merged into its choice's update
// (text appended, tokens and logprobs added, the finish reason set) and a read copies the updates
// with news out and clears them, so their buffers keep their capacity and reporting a token
// allocates nothing on the engine's thread once they have grown.
class RequestStream {
 public:
  explicit RequestStream(int choices = 1);

  // Owner side. Waits up to timeout_s for news, then appends one update per choice that has news
  // (in choice order) to `out`. Returns true when the request is finished (all updates delivered
  // or failed).
  bool wait(std::vector<ChoiceUpdate>& out, double timeout_s);
  bool done() const;
  // Owner side, for owners that do not block in wait(): `fn` is called after every push and at
  // finish, on the engine's thread and without the stream's lock held, so it must only hand
  // the news on (an event loop posts itself a task that calls wait(out, 0)). If updates are
  // already pending when it is set, it is called at once. The stream lets go of it after the
  // call that follows finish(), so a listener may hold whatever owns the stream.
  void set_listener(std::function<void()> fn);
  Usage usage() const;
  std::string error() const;  // non-empty when the engine failed the request

  // Engine side. push_token reports one token of choice `index` (lp: its logprobs, or null).
  void push_token(int index, int32_t id, std::string_view text, const TokenLogprob* lp, FinishReason finish);
  void push(ChoiceUpdate u);
  void set_usage(const Usage& u);
  void finish(const std::string& error = {});

  uint64_t id = 0;
  std::atomic<bool> cancelled{false};

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ChoiceUpdate> pending_;  // per choice
  std::vector<uint8_t> news_;          // per choice: pending_[i] holds something unread
  Usage usage_;
  std::string error_;
  bool done_ = false;
  std::shared_ptr<const std::function<void()>> listener_;  // shared: notify copies it without allocating

  void notify();
  ChoiceUpdate& slot(int index);  // with mu_ held
};

}  // namespace dsinfer::engine
