// The HTTP front end (cpp-httplib): OpenAI/DeepSeek-compatible routes over one Engine.
//   POST /v1/chat/completions, POST /v1/completions  (JSON or SSE streaming)
//   GET /v1/models, GET /health, GET /metrics (Prometheus text)
// Every handler thread only parses, submits to the engine and relays the engine's updates; a
// streaming client that goes away cancels its request, which frees its KV blocks at the next
// step boundary. drain() is what SIGTERM does: refuse new requests (503), let the in-flight ones
// finish (or end them cleanly after the drain timeout), then stop listening.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "serve/metrics_text.h"
#include "serve/protocol.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace dsinfer::serve {

// Defaults for the HTTP side of `dsinfer serve`, in one place.
struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                     // 0: any free port (see bind())
  std::vector<std::string> model_names;  // "model" values accepted; the first is reported
  size_t max_body_bytes = 8u << 20;    // larger bodies get 413
  int http_threads = 0;                // 0: enough for every running and queued request
  double drain_timeout_s = 30;
  int keep_alive_timeout_s = 5;
};

// Cost accounting (issue 6) plugs in here: extra Prometheus text appended to /metrics and the
// body of GET /v1/accounting. Both get the engine's metrics snapshot.
struct AccountingHooks {
  std::function<std::string(const engine::EngineMetrics&)> metrics_text;
  std::function<nlohmann::json(const engine::EngineMetrics&)> report;
};

class Server {
 public:
  Server(engine::Engine& engine, ServerOptions options, AccountingHooks accounting = {});
  ~Server();

  // Binds the listening socket; returns the port (useful with port 0). Throws Error on failure.
  int bind();
  // Serves until stop() or drain() completes.
  void serve();
  void drain();
  void stop();

 private:
  struct StreamState;

  engine::Engine& engine_;
  ServerOptions options_;
  AccountingHooks accounting_;
  ProtocolContext protocol_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<int64_t> active_{0};
  mutable std::mutex counters_mu_;
  HttpCounters counters_;
  double started_ = 0;

  void routes();
  void generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res);
  void reply_error(httplib::Response& res, int status, const std::string& message, const std::string& type,
                   const std::string& param = {}, const std::string& code = {});
  void count(const std::string& path, int status);
};

}  // namespace dsinfer::serve
