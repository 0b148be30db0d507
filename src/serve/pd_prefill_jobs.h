// A prefill instance's requests in flight (serve/server_pd.cpp): one thread answers each once
// its stream has finished and its exporter has every KV message acknowledged, or the decode side
// left them unacknowledged for the transfer timeout, so no HTTP worker waits on a prefill. While
// a prompt waits or computes, the same thread sends the decode side heartbeats (every third of
// the timeout). How long the prefill itself may take is the router's to bound (it hangs up, and
// the request is cancelled).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/request.h"
#include "serve/http_server.h"
#include "serve/pd_exporter.h"

namespace dsinfer::serve::pd {

class PrefillJobs {
 public:
  struct Job {
    std::shared_ptr<engine::RequestStream> stream;
    std::shared_ptr<KvExporter> exporter;
    http::Reply reply{nullptr};
    double timeout_s = 30;
    double done_at = 0;  // when the stream finished
    int32_t first_token = -1;
  };

  PrefillJobs();
  ~PrefillJobs();  // stop()
  void add(std::shared_ptr<Job> job);
  // Something changed (a stream's news, an exporter done): look again.
  void wake();
  // Answers what is left with 503 and ends the thread.
  void stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Job>> jobs_;
  bool stop_ = false, news_ = false;
  std::thread thread_;

  void run();
  static bool settle(Job& j, double now);  // true once the job's reply is sent
};

}  // namespace dsinfer::serve::pd
