#include "router/router.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/hex.h"
#include "base/json.h"
#include "base/log.h"
#include "base/timer.h"
#include "parallel/pd_balancer.h"
#include "router/upstream.h"
#include "serve/api_error.h"

namespace dsinfer::router {

using nlohmann::json;
namespace http = serve::http;

namespace {

http::Response error_reply(int status, const std::string& message, const char* type = "server_error") {
  return serve::error_response(status, message, type);
}

http::Response passthrough(const UpstreamReply& r) {
  http::Response out;
  out.status = r.status;
  out.body = r.body;
  if (!r.content_type.empty() && r.content_type.rfind("application/json", 0) != 0) out.content_type = r.content_type;
  if (!r.retry_after.empty()) out.headers.emplace_back("Retry-After", r.retry_after);
  return out;
}

// The prompt's chained block keys; a malformed one ends the chain (the keys after it would be
// claims about a prefix the router cannot name).
std::vector<uint64_t> parse_keys(const json& keys) {
  std::vector<uint64_t> out;
  if (!keys.is_array()) return out;
  for (const auto& k : keys) {
    uint64_t key = 0;
    if (!k.is_string() || !parse_hex64(k.get<std::string>(), key)) break;
    out.push_back(key);
  }
  return out;
}

}  // namespace

struct Router::State {
  RouterOptions options;
  std::vector<Endpoint> prefill, decode;
  parallel::PrefillBalancer prefill_balancer;
  parallel::DecodeBalancer decode_balancer;
  http::Server http;
  std::atomic<int64_t> inflight{0};
  std::atomic<bool> draining{false}, stopping{false};
  std::thread poller;
  std::mutex poll_mu;
  std::condition_variable poll_cv;

  // Counters for /metrics.
  std::mutex counters_mu;
  std::map<std::string, uint64_t> results;  // by outcome
  std::atomic<uint64_t> prefill_retries{0}, decode_retries{0};
  std::vector<std::atomic<uint64_t>> prefill_assigned, decode_assigned;

  explicit State(RouterOptions o)
      : options(std::move(o)),
        prefill_balancer(int(std::max<size_t>(1, options.prefill_urls.size()))),
        decode_balancer(int(std::max<size_t>(1, options.decode_urls.size()))),
        http(options.http),
        prefill_assigned(options.prefill_urls.size()),
        decode_assigned(options.decode_urls.size()) {
    check(!options.prefill_urls.empty(), "the router needs at least one --prefill URL");
    check(!options.decode_urls.empty(), "the router needs at least one --decode URL");
    for (const auto& u : options.prefill_urls) prefill.push_back(parse_endpoint(u));
    for (const auto& u : options.decode_urls) decode.push_back(parse_endpoint(u));
  }

  void count(const std::string& outcome) {
    std::lock_guard lock(counters_mu);
    ++results[outcome];
  }

  // One poll of every instance's /pd/status: reports its load, or marks it down.
  template <typename Balancer>
  void poll_all(std::vector<Endpoint>& eps, Balancer& balancer) {
    for (size_t i = 0; i < eps.size(); ++i) {
      UpstreamReply r = call(eps[i], "GET", "/pd/status", "", {}, options.status_timeout_s);
      bool ok = r.connected && r.status == 200;
      if (ok) {
        try {
          balancer.report(int(i), parallel::parse_instance_status(parse_json(r.body, eps[i].url + "/pd/status"),
                                                                  eps[i].url + "/pd/status"));
        } catch (const Error& e) {
          log_warn("router: ", e.what());
          ok = false;
        }
      }
      const bool was = balancer.is_up(int(i));
      if (was != ok) {
        if (ok)
          log_info("router: ", eps[i].url, " is up");
        else
          log_warn("router: ", eps[i].url, " is down (", r.connected ? str("HTTP ", r.status) : r.error, ")");
      }
      balancer.set_up(int(i), ok);
    }
  }

  void poll_loop() {
    while (!stopping) {
      poll_all(prefill, prefill_balancer);
      poll_all(decode, decode_balancer);
      std::unique_lock lock(poll_mu);
      poll_cv.wait_for(lock, std::chrono::duration<double>(options.poll_interval_s), [&] { return stopping.load(); });
    }
  }

  void handle(const char* api, std::string body, http::Reply reply);
  std::string metrics_text();
};

// One request end to end, on its own thread.
void Router::State::handle(const char* api, std::string body, http::Reply reply) {
  auto gone = std::make_shared<std::atomic<bool>>(false);
  reply.on_abandon([gone] { *gone = true; });
  const double timeout = options.upstream_timeout_s;

  // 1. A decode instance reserves the prompt's KV (and parses the request, as serve would).
  std::vector<int> tried;
  UpstreamReply reserve;
  int d = -1;
  UpstreamReply last_refusal;
  for (;;) {
    d = decode_balancer.choose(0, tried);
    if (d < 0) {
      if (last_refusal.connected) {
        reply.send(passthrough(last_refusal));
        count("no_decode_room");
      } else {
        reply.send(error_reply(503, "no decode instance is available", "service_unavailable_error"));
        count("no_decode_instance");
      }
      return;
    }
    reserve = call(decode[size_t(d)], "POST", str("/pd/reserve", api), body, {}, timeout);
    if (reserve.connected && reserve.status == 200) break;
    tried.push_back(d);
    if (!reserve.connected) {
      log_warn("router: reserve on ", decode[size_t(d)].url, " failed: ", reserve.error);
      decode_balancer.set_up(d, false);
      ++decode_retries;
      continue;
    }
    if (reserve.status == 503 || reserve.status == 429) {  // full or draining: another may have room
      last_refusal = reserve;
      ++decode_retries;
      continue;
    }
    reply.send(passthrough(reserve));  // the request's own error, as serve words it
    count(str("client_error_", reserve.status));
    return;
  }
  json res;
  std::string transfer;
  int64_t prompt_tokens = 0;
  std::vector<uint64_t> keys;
  try {
    res = parse_json(reserve.body, "the decode instance's reservation");
    transfer = res.at("transfer").get<std::string>();
    prompt_tokens = res.at("prompt_tokens").get<int64_t>();
    keys = parse_keys(res.at("prefix_keys"));
  } catch (const std::exception& e) {
    reply.send(error_reply(502, str("the decode instance answered a malformed reservation: ", e.what())));
    count("bad_reservation");
    return;
  }
  decode_balancer.assign(d, prompt_tokens);
  ++decode_assigned[size_t(d)];
  const Endpoint& dec = decode[size_t(d)];
  auto cancel = [&] { call(dec, "POST", "/pd/cancel", "", {{"X-Dsinfer-Transfer", transfer}}, 5); };

  // 2. A prefill instance computes the prompt and sends its KV to the decode instance; one that
  // fails is retried on another with a new attempt number.
  std::vector<int> tried_prefill;
  std::string last_error = "no prefill instance is available";
  bool prefilled = false;
  for (int attempt = 0; attempt < options.max_prefill_attempts && !*gone; ++attempt) {
    const int p = prefill_balancer.choose_and_assign(prompt_tokens, keys, tried_prefill);
    if (p < 0) break;
    ++prefill_assigned[size_t(p)];
    tried_prefill.push_back(p);
    const Headers h = {{"X-Dsinfer-Transfer", transfer},
                       {"X-Dsinfer-Attempt", std::to_string(attempt)},
                       {"X-Dsinfer-Decode-Address", res.value("transfer_address", "")},
                       {"X-Dsinfer-Kv-Layout", res.value("kv_layout", "")},
                       {"X-Dsinfer-Prompt-Hash", res.value("prompt_hash", "")}};
    // Bounded by --upstream-timeout: the prompt may queue behind others there.
    UpstreamReply r = call(prefill[size_t(p)], "POST", str("/pd/prefill", api), body, h, timeout);
    if (r.connected && r.status == 200) {
      prefilled = true;
      break;
    }
    if (!r.connected) {
      prefill_balancer.set_up(p, false);
      last_error = str("prefill instance ", prefill[size_t(p)].url, " failed: ", r.error);
    } else {
      std::string msg = r.body;
      try {
        msg = parse_json(r.body, "prefill error").at("error").at("message").get<std::string>();
      } catch (const std::exception&) {
      }
      last_error = str("prefill instance ", prefill[size_t(p)].url, " answered ", r.status, ": ", msg);
      if (r.status >= 400 && r.status < 500) {  // a configuration mismatch: another try would fail the same way
        cancel();
        reply.send(error_reply(500, last_error));
        count("prefill_refused");
        return;
      }
    }
    log_warn("router: ", last_error, "; retrying");
    ++prefill_retries;
  }
  if (!prefilled || *gone) {
    cancel();
    if (!*gone) reply.send(error_reply(503, str("the prompt could not be prefilled: ", last_error), "service_unavailable_error"));
    count(*gone ? "client_gone" : "prefill_failed");
    return;
  }

  // 3. The decode instance's reply, relayed as it comes.
  bool streaming = false, started = false;
  std::string whole;
  int status = 0;
  std::string content_type, retry_after;
  StreamHandlers handlers;
  handlers.head = [&](int s, const std::string& ct, const std::string& ra) {
    status = s;
    content_type = ct;
    retry_after = ra;
    streaming = s == 200 && ct.rfind("text/event-stream", 0) == 0;
    if (streaming) {
      http::Response head;
      head.content_type = "text/event-stream";
      head.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
      reply.begin_stream(std::move(head));
      started = true;
    }
    return !*gone;
  };
  handlers.chunk = [&](const char* data, size_t n) {
    if (*gone) return false;
    if (streaming)
      reply.write(std::string(data, n));
    else
      whole.append(data, n);
    return true;
  };
  UpstreamReply r = call_streaming(dec, "/pd/decode", {{"X-Dsinfer-Transfer", transfer}}, timeout, handlers);
  if (*gone) {
    count("client_gone");
    return;
  }
  if (!r.error.empty()) {
    const std::string why = str("the decode instance ", dec.url, " failed mid-reply: ", r.error);
    log_warn("router: ", why);
    decode_balancer.set_up(d, false);
    if (started) {
      reply.write("data: " + serve::error_body(502, why, "server_error") + "\n\ndata: [DONE]\n\n");
      reply.end();
    } else {
      reply.send(error_reply(502, why));
    }
    count("decode_failed");
    return;
  }
  if (streaming) {
    reply.end();
  } else {
    UpstreamReply whole_reply;
    whole_reply.status = status;
    whole_reply.body = std::move(whole);
    whole_reply.content_type = content_type;
    whole_reply.retry_after = retry_after;
    reply.send(passthrough(whole_reply));
  }
  count(status == 200 ? "ok" : str("decode_status_", status));
}

std::string Router::State::metrics_text() {
  std::string out = "# HELP dsinfer_router_requests_total Requests by outcome.\n# TYPE dsinfer_router_requests_total counter\n";
  {
    std::lock_guard lock(counters_mu);
    for (const auto& [k, v] : results) out += str("dsinfer_router_requests_total{outcome=\"", k, "\"} ", v, "\n");
  }
  out += str("# HELP dsinfer_router_retries_total Instances tried again elsewhere, by stage.\n",
             "# TYPE dsinfer_router_retries_total counter\n",
             "dsinfer_router_retries_total{stage=\"prefill\"} ", prefill_retries.load(), "\n",
             "dsinfer_router_retries_total{stage=\"decode\"} ", decode_retries.load(), "\n",
             "# HELP dsinfer_router_inflight Requests in flight.\n# TYPE dsinfer_router_inflight gauge\n",
             "dsinfer_router_inflight ", inflight.load(), "\n",
             "# HELP dsinfer_router_instance_up Whether the instance answers /pd/status.\n",
             "# TYPE dsinfer_router_instance_up gauge\n");
  for (size_t i = 0; i < prefill.size(); ++i)
    out += str("dsinfer_router_instance_up{role=\"prefill\",url=\"", prefill[i].url, "\"} ",
               int(prefill_balancer.is_up(int(i))), "\n");
  for (size_t i = 0; i < decode.size(); ++i)
    out += str("dsinfer_router_instance_up{role=\"decode\",url=\"", decode[i].url, "\"} ",
               int(decode_balancer.is_up(int(i))), "\n");
  out += "# HELP dsinfer_router_assigned_total Requests given to each instance.\n# TYPE dsinfer_router_assigned_total counter\n";
  for (size_t i = 0; i < prefill.size(); ++i)
    out += str("dsinfer_router_assigned_total{role=\"prefill\",url=\"", prefill[i].url, "\"} ",
               prefill_assigned[i].load(), "\n");
  for (size_t i = 0; i < decode.size(); ++i)
    out += str("dsinfer_router_assigned_total{role=\"decode\",url=\"", decode[i].url, "\"} ",
               decode_assigned[i].load(), "\n");
  return out;
}

Router::Router(RouterOptions options) : state_(std::make_shared<State>(std::move(options))) {
  State& s = *state_;
  s.http.set_error_response([](int status, const std::string& message) {
    return error_reply(status, message, status >= 500 ? "server_error" : "invalid_request_error");
  });
  for (const char* api : {"/v1/chat/completions", "/v1/completions"}) {
    std::weak_ptr<State> weak = state_;
    s.http.route("POST", api, [weak, api](http::Request& req, http::Reply reply) {
      auto st = weak.lock();
      if (!st) return;
      if (st->draining) {
        auto r = error_reply(503, "the router is shutting down", "service_unavailable_error");
        r.headers.emplace_back("Retry-After", "5");
        reply.send(std::move(r));
        return;
      }
      if (st->inflight.fetch_add(1) >= st->options.max_inflight) {
        --st->inflight;
        auto r = error_reply(429, str("the router has ", st->options.max_inflight, " requests in flight; retry shortly"),
                             "rate_limit_error");
        r.headers.emplace_back("Retry-After", "1");
        reply.send(std::move(r));
        return;
      }
      // The request thread holds the state, so a router stopping under it stays valid.
      std::thread([st, api, body = std::move(req.body), reply]() mutable {
        try {
          st->handle(api, std::move(body), reply);
        } catch (const std::exception& e) {
          reply.send(error_reply(500, str("router: ", e.what())));
        }
        --st->inflight;
      }).detach();
    });
  }
  std::weak_ptr<State> weak = state_;
  s.http.route("GET", "/health", [weak](http::Request&, http::Reply reply) {
    auto st = weak.lock();
    if (!st) return;
    bool p = false, d = false;
    for (int i = 0; i < st->prefill_balancer.num_instances(); ++i) p |= st->prefill_balancer.is_up(i);
    for (int i = 0; i < st->decode_balancer.num_instances(); ++i) d |= st->decode_balancer.is_up(i);
    const bool ok = p && d && !st->draining;
    reply.send(serve::json_response(ok ? 200 : 503, json{{"status", ok ? "ok" : st->draining ? "draining" : "degraded"},
                                                         {"prefill_up", p},
                                                         {"decode_up", d}}
                                                        .dump()));
  });
  s.http.route("GET", "/metrics", [weak](http::Request&, http::Reply reply) {
    auto st = weak.lock();
    if (!st) return;
    http::Response r;
    r.body = st->metrics_text();
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply.send(std::move(r));
  });
  // The model list is the instances': the first decode instance that answers.
  s.http.route("GET", "/v1/models", [weak](http::Request&, http::Reply reply) {
    auto st = weak.lock();
    if (!st) return;
    std::thread([st, reply] {
      for (const Endpoint& e : st->decode) {
        UpstreamReply r = call(e, "GET", "/v1/models", "", {}, 5);
        if (r.connected) {
          reply.send(passthrough(r));
          return;
        }
      }
      reply.send(error_reply(503, "no decode instance is available", "service_unavailable_error"));
    }).detach();
  });
}

Router::~Router() { stop(); }

int Router::bind() {
  const int port = state_->http.bind();
  state_->poller = std::thread([st = state_] { st->poll_loop(); });
  return port;
}

void Router::serve() { state_->http.run(); }

void Router::stop() {
  state_->stopping = true;
  state_->poll_cv.notify_all();
  state_->http.stop();
  if (state_->poller.joinable()) state_->poller.join();
}

void Router::drain() {
  state_->draining = true;
  state_->http.begin_drain();
  const double deadline = now_seconds() + state_->options.drain_timeout_s;
  while (state_->inflight > 0 && now_seconds() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // The last bytes get a moment to go out.
  const double end = now_seconds() + 2;
  while (state_->http.responses_in_flight() > 0 && now_seconds() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop();
}

}  // namespace dsinfer::router
