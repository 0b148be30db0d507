#include "engine/request.h"

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

bool RequestStream::wait(std::vector<ChoiceUpdate>& out, double timeout_s) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return done_ || !pending_.empty(); });
  while (!pending_.empty()) {
    out.push_back(std::move(pending_.front()));
    pending_.pop_front();
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
    fn = listener_;
  }
  cv_.notify_all();
  if (fn) (*fn)();
}

void RequestStream::push(ChoiceUpdate u) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(u));
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
