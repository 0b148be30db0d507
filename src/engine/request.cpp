#include "engine/request.h"

#include <algorithm>
#include <chrono>

namespace dsinfer::engine {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kNone: break;
  }
  return "";
}

RequestStream::RequestStream(int choices) : pending_(size_t(std::max(1, choices))), news_(pending_.size(), 0) {
  // Room for what a reader that keeps up sees between two reads; more only if it falls behind.
  for (size_t i = 0; i < pending_.size(); ++i) {
    pending_[i].index = int(i);
    pending_[i].token_ids.reserve(256);
    pending_[i].text.reserve(4096);
  }
}

ChoiceUpdate& RequestStream::slot(int index) {
  if (size_t(index) >= pending_.size()) {  // a choice beyond what the constructor was told
    pending_.resize(size_t(index) + 1);
    news_.resize(pending_.size(), 0);
    pending_[size_t(index)].index = index;
  }
  news_[size_t(index)] = 1;
  return pending_[size_t(index)];
}

bool RequestStream::wait(std::vector<ChoiceUpdate>& out, double timeout_s) {
  std::unique_lock lock(mu_);
  auto has_news = [&] { return std::find(news_.begin(), news_.end(), uint8_t(1)) != news_.end(); };
  cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return done_ || has_news(); });
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (!news_[i]) continue;
    ChoiceUpdate& p = pending_[i];
    out.push_back(p);  // a copy: the slot keeps its buffers for the engine's next tokens
    p.text.clear();
    p.token_ids.clear();
    p.logprobs.clear();
    p.logits.clear();
    p.logits_rows = 0;
    p.finish = FinishReason::kNone;
    news_[i] = 0;
  }
  return done_;
}

bool RequestStream::done() const {
  std::lock_guard lock(mu_);
  return done_;
}

Usage RequestStream::usage() const {
  std::lock_guard lock(mu_);
  return usage_;
}

std::string RequestStream::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void RequestStream::set_listener(std::function<void()> fn) {
  bool news;
  {
    std::lock_guard lock(mu_);
    listener_ = std::make_shared<const std::function<void()>>(std::move(fn));
    news = done_ || !pending_.empty();
  }
  if (news) notify();
}

void RequestStream::notify() {
  std::shared_ptr<const std::function<void()>> fn;
  {
    std::lock_guard lock(mu_);
    // After finish() nothing more will be told: let go of the listener, which usually holds its
    // owner, which holds this stream (a cycle that would otherwise outlive the request).
    fn = done_ ? std::move(listener_) : listener_;
  }
  cv_.notify_all();
  if (fn) (*fn)();
}

void RequestStream::push_token(int index, int32_t id, std::string_view text, const TokenLogprob* lp,
                               FinishReason finish) {
  {
    std::lock_guard lock(mu_);
    ChoiceUpdate& p = slot(index);
    p.token_ids.push_back(id);
    p.text.append(text);
    if (lp) p.logprobs.push_back(*lp);
    if (finish != FinishReason::kNone) p.finish = finish;
  }
  notify();
}

void RequestStream::push(ChoiceUpdate u) {
  {
    std::lock_guard lock(mu_);
    ChoiceUpdate& p = slot(u.index);
    p.token_ids.insert(p.token_ids.end(), u.token_ids.begin(), u.token_ids.end());
    p.text += u.text;
    p.logprobs.insert(p.logprobs.end(), u.logprobs.begin(), u.logprobs.end());
    if (u.logits_rows > 0) {
      if (p.logits_rows == 0) p.logits_first_position = u.logits_first_position;
      p.logits.insert(p.logits.end(), u.logits.begin(), u.logits.end());
      p.logits_rows += u.logits_rows;
    }
    if (u.finish != FinishReason::kNone) p.finish = u.finish;
  }
  notify();
}

void RequestStream::set_usage(const Usage& u) {
  std::lock_guard lock(mu_);
  usage_ = u;
}

void RequestStream::finish(const std::string& error) {
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    error_ = error;
  }
  notify();
}

}  // namespace dsinfer::engine
