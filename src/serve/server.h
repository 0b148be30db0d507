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
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "serve/http_server.h"
#include "serve/metrics_text.h"
#include "serve/pd_exporter.h"
#include "serve/pd_prefill_jobs.h"
#include "serve/pd_receiver.h"
#include "serve/protocol.h"
#include "transfer/ucx_agent.h"

namespace dsinfer::serve {

class CompletionStream;

// Defaults for the HTTP side of `dsinfer serve`, in one place.
// Prefill/decode disaggregation (docs/serving.md): what this instance does for a router.
//   kBoth     serves whole requests (the default; no router needed)
//   kPrefill  also computes prompts for a router and sends their KV to a decode instance
//   kDecode   also reserves KV for a router's requests and decodes them once their KV arrived
// Every role keeps the plain API and GET /pd/status (the balancers' load report).
enum class PdRole { kBoth, kPrefill, kDecode };
const char* pd_role_name(PdRole r);

struct ServerOptions {
  http::ServerOptions http;              // address, limits, timeouts, connection cap, workers
  std::vector<std::string> model_names;  // "model" values accepted; the first is reported
  double drain_timeout_s = 30;
  double drain_grace_s = 5;  // after the drain: for the last chunks to reach the clients
  PdRole role = PdRole::kBoth;
  // Prefill and decode roles: the UCX agent the KV travels through (outlives the server), and
  // the longest silence a transfer may keep: the decode side fails a reservation that hears
  // nothing (no rows, no heartbeat) for this long; the prefill side fails a transfer whose last
  // messages are not acknowledged this long after its prompt finished.
  transfer::UcxAgent* kv_agent = nullptr;
  double kv_transfer_timeout_s = 30;
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
  // The reply for a request that could not be queued (bad request, queue full, shutting down).
  http::Response refusal(const Error& e) const;
  // Answers 503 (and returns true) once the server drains.
  bool refused_while_draining(const http::Reply& reply) const;
  // From a queued request on: its stream feeds the reply (streamed or whole); a client that
  // leaves cancels it.
  void attach(const ParsedRequest& pr, const std::shared_ptr<engine::RequestStream>& stream, const http::Reply& reply);

  // Prefill/decode disaggregation (server_pd.cpp).
  struct Reservation;
  std::unique_ptr<pd::KvReceiver> receiver_;
  pd::ExportTotals export_totals_;
  std::unique_ptr<pd::PrefillJobs> prefill_jobs_;
  std::mutex pd_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Reservation>> reservations_;
  std::atomic<uint64_t> imports_started_{0}, imports_refused_{0};
  std::string kv_layout_;
  void pd_routes();
  void stop_pd();
  nlohmann::json pd_status() const;
  std::string pd_metrics_text() const;
  void pd_reserve(Endpoint endpoint, const http::Request& req, const http::Reply& reply);
  void pd_decode(const http::Request& req, const http::Reply& reply);
  void pd_cancel(const http::Request& req, const http::Reply& reply);
  void pd_prefill(Endpoint endpoint, const http::Request& req, const http::Reply& reply);
  void pump(const std::shared_ptr<Pump>& p);
  void count(const std::string& path, int status);
};

}  // namespace dsinfer::serve
