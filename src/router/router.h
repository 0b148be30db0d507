// dsinfer router: the OpenAI/DeepSeek API in front of prefill and decode instances (DeepSeek's
// disaggregated serving; docs/serving.md has the picture). For each request:
//   1. decode balancer -> a decode instance reserves KV blocks for the prompt. It parses the
//      client's body exactly as `serve` does, so a bad request gets serve's own error, passed
//      through unchanged; a full instance (503/429) or a dead one is skipped for the next.
//   2. prefill balancer (input tokens, attention work, prefix affinity) -> a prefill instance
//      computes the prompt and sends its KV, layer by layer, and the first token to the decode
//      instance over UCX. A prefill instance that fails or dies is retried on another (a new
//      attempt number: the decode side drops what the failed attempt sent).
//   3. the decode instance's reply (streamed or whole, exactly as `serve` would send it) is
//      relayed to the client. A decode instance that dies mid-stream ends the stream with an
//      error event and [DONE]; a whole reply becomes a 502.
// The router keeps no state a restart would lose beyond the requests in flight: the instances'
// loads come from GET /pd/status, polled (an instance that stops answering is marked down and
// rejoins when it answers again), and a client that goes away cancels its request upstream.
// Each request in flight holds one thread for its blocking upstream calls (bounded by
// --max-inflight); the HTTP side is serve's event-driven server.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "serve/http_server.h"

namespace dsinfer::router {

struct RouterOptions {
  serve::http::ServerOptions http;
  std::vector<std::string> prefill_urls, decode_urls;
  double poll_interval_s = 0.1;
  double status_timeout_s = 1;   // a /pd/status taking longer marks the instance down
  double upstream_timeout_s = 60;  // reserve and prefill calls; the decode reply's silence between chunks
  int max_prefill_attempts = 3;
  int64_t max_inflight = 1024;
  double drain_timeout_s = 30;
};

class Router {
 public:
  explicit Router(RouterOptions options);
  ~Router();
  int bind();
  void serve();  // until stop() or drain() completes
  void drain();  // refuse new requests, let the ones in flight finish (bounded), stop
  void stop();

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the request threads, which may outlive a stop
};

}  // namespace dsinfer::router
