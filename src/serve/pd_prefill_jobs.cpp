#include "serve/pd_prefill_jobs.h"

#include <chrono>

#include "base/timer.h"
#include "serve/api_error.h"
#include "serve/protocol.h"

namespace dsinfer::serve::pd {

PrefillJobs::PrefillJobs() : thread_([this] { run(); }) {}

PrefillJobs::~PrefillJobs() { stop(); }

void PrefillJobs::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PrefillJobs::wake() {
  {
    std::lock_guard lock(mu_);
    news_ = true;
  }
  cv_.notify_all();
}

void PrefillJobs::add(std::shared_ptr<Job> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
    news_ = true;
  }
  cv_.notify_all();
}
void PrefillJobs::run() {
  // Settled without the lock: an exporter's abandon() calls wake().
  std::vector<std::shared_ptr<Job>> mine;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stop_ || news_; });
      news_ = false;
      mine.insert(mine.end(), jobs_.begin(), jobs_.end());
      jobs_.clear();
      if (stop_) break;
    }
    const double now = now_seconds();
    for (size_t i = 0; i < mine.size();) {
      if (settle(*mine[i], now))
        mine.erase(mine.begin() + long(i));
      else
        ++i;
    }
  }
  for (auto& j : mine) {
    j->exporter->abandon("the prefill instance is stopping");
    j->reply.send(error_response(503, "the prefill instance is stopping", "service_unavailable_error"));
  }
}

bool PrefillJobs::settle(Job& j, double now) {
  std::vector<engine::ChoiceUpdate> ups;
  const bool done = j.stream->wait(ups, 0);
  for (const auto& u : ups)
    if (!u.token_ids.empty() && j.first_token < 0) j.first_token = u.token_ids[0];
  if (!done) {
    j.exporter->keep_alive(now, j.timeout_s / 3);
    return false;
  }
  if (j.done_at == 0) j.done_at = now;
  const std::string err = j.stream->error();
  if (!err.empty() || j.first_token < 0) {
    j.exporter->abandon(err.empty() ? "the prefill ended without a first token" : err);
    j.reply.send(error_response(500, err.empty() ? "the prefill ended without a first token" : err, "server_error"));
    return true;
  }
  if (!j.exporter->complete()) {
    if (now < j.done_at + j.timeout_s) return false;
    j.exporter->abandon("the decode instance did not acknowledge the KV in time");
    j.reply.send(error_response(
        504, "the decode instance did not acknowledge the prompt's KV before the transfer deadline (--kv-transfer-timeout)",
        "server_error"));
    return true;
  }
  const std::string xerr = j.exporter->error();
  if (!xerr.empty()) {
    j.reply.send(error_response(502, xerr, "server_error"));
    return true;
  }
  j.reply.send(json_response(200, dump({{"first_token", j.first_token},
                                        {"cached_tokens", j.stream->usage().cached_tokens},
                                        {"disk_cached_tokens", j.stream->usage().disk_cached_tokens},
                                        {"kv_bytes", j.exporter->bytes()}})));
  return true;
}

}  // namespace dsinfer::serve::pd
