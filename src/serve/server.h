// The OpenAI/DeepSeek-compatible API over one Engine, on the event-driven HTTP server
// (serve/http_server.h):
//   POST /v1/chat/completions, POST /v1/completions  (JSON or SSE streaming)
//   GET /v1/models, GET /health, GET /metrics (Prometheus text), GET /v1/accounting
// A worker thread parses, tokenizes and submits; from then on the request costs no thread: the
// engine's stream listener posts a pump task to the event loop, which formats what is new and
// writes it. A client that goes away (streaming or not) cancels its request, which frees its KV
// blocks at the next step boundary. drain() is what SIGTERM does: refuse new requests (503), let
// the in-flight ones finish (or end them after the drain timeout), give their last bytes a short
// grace to go out, then stop; no slow socket can extend any of these.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "serve/http_server.h"
#include "serve/metrics_text.h"
#include "serve/protocol.h"

namespace dsinfer::serve {

class CompletionStream;

// Defaults for the HTTP side of `dsinfer serve`, in one place.
struct ServerOptions {
  http::ServerOptions http;              // address, limits, timeouts, connection cap, workers
  std::vector<std::string> model_names;  // "model" values accepted; the first is reported
  double drain_timeout_s = 30;
  double drain_grace_s = 5;  // after the drain: for the last chunks to reach the clients
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
  struct Pump;

  engine::Engine& engine_;
  ServerOptions options_;
  AccountingHooks accounting_;
  ProtocolContext protocol_;
  http::Server http_;
  mutable std::mutex counters_mu_;
  HttpCounters counters_;
  double started_ = 0;

  void routes();
  void generate(Endpoint endpoint, const http::Request& req, const http::Reply& reply);
  void pump(const std::shared_ptr<Pump>& p);
  void count(const std::string& path, int status);
};

}  // namespace dsinfer::serve
