#include "serve/server.h"

#include <chrono>
#include <ctime>
#include <thread>

#include "base/log.h"
#include "base/timer.h"
#include "serve/api_error.h"
#include "serve/completion_stream.h"

namespace dsinfer::serve {

using nlohmann::json;

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::Response error_response(int status, const std::string& message, const std::string& type,
                              const std::string& param, const std::string& code) {
  return json_response(status, error_body(status, message, type, param, code));
}

namespace {

std::string known_path(const std::string& p) {
  for (const char* k : {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/v1/accounting"})
    if (p == k) return k;
  return "other";
}

const char* type_for(int status) {
  switch (status) {
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

const char* code_for(int status) {
  switch (status) {
    case 408: return "request_timeout";
    case 413: return "request_too_large";
    case 415: return "unsupported_content_encoding";
    case 431: return "request_headers_too_large";
    default: return "";
  }
}

}  // namespace

// One request between the engine and its client: the engine's listener schedules pump() on the
// event loop, which moves the stream's news into the reply. Touched only on the loop, except
// `scheduled`, which the engine thread sets.
struct Server::Pump {
  Pump(const ParsedRequest& pr, std::shared_ptr<engine::RequestStream> s, http::Reply r)
      : stream(std::move(s)), reply(std::move(r)), reply_shape(pr, stream->id, pr.model) {}
  std::shared_ptr<engine::RequestStream> stream;
  http::Reply reply;
  CompletionStream reply_shape;
  std::atomic<bool> scheduled{false};
  bool finished = false;
};

Server::Server(engine::Engine& engine, ServerOptions options, AccountingHooks accounting)
    : engine_(engine), options_(std::move(options)), accounting_(std::move(accounting)), http_(options_.http) {
  check(!options_.model_names.empty(), "the server needs a model name");
  protocol_.tokenizer = &engine_.tokenizer();
  protocol_.model_names = options_.model_names;
  protocol_.limits = engine_.limits();
  started_ = double(std::time(nullptr));
  routes();
}

Server::~Server() { stop_pd(); }

void Server::count(const std::string& path, int status) {
  std::lock_guard lock(counters_mu_);
  ++counters_.requests[{known_path(path), status}];
}

void Server::routes() {
  http_.set_error_response([](int status, const std::string& message) {
    return error_response(status, message, type_for(status), {}, code_for(status));
  });
  http_.set_response_observer([this](const std::string& path, int status) { count(path, status); });

  http_.route("POST", "/v1/chat/completions",
              [this](http::Request& req, http::Reply reply) { generate(Endpoint::kChat, req, reply); },
              http::RunOn::kWorker);
  http_.route("POST", "/v1/completions",
              [this](http::Request& req, http::Reply reply) { generate(Endpoint::kCompletion, req, reply); },
              http::RunOn::kWorker);
  http_.route("GET", "/v1/models", [this](http::Request&, http::Reply reply) {
    json data = json::array();
    for (const auto& name : options_.model_names)
      data.push_back({{"id", name},
                      {"object", "model"},
                      {"created", int64_t(started_)},
                      {"owned_by", "dsinfer"},
                      {"max_model_len", engine_.max_model_len()},
                      {"vocab_size", engine_.limits().vocab_size}});
    reply.send(json_response(200, dump({{"object", "list"}, {"data", data}})));
  });
  http_.route("GET", "/health", [this](http::Request&, http::Reply reply) {
    bool ok = engine_.accepting();
    reply.send(json_response(ok ? 200 : 503, dump({{"status", ok ? "ok" : "draining"}})));
  });
  http_.route("GET", "/metrics", [this](http::Request&, http::Reply reply) {
    auto m = engine_.metrics();
    HttpCounters c;
    {
      std::lock_guard lock(counters_mu_);
      c = counters_;
    }
    c.connections = http_.stats();
    http::Response r;
    r.body = render_metrics(m, c, options_.model_names[0]);
    if (accounting_.metrics_text) r.body += accounting_.metrics_text(m);
    r.body += pd_metrics_text();
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply.send(std::move(r));
  });
  pd_routes();
  http_.route("GET", "/v1/accounting", [this](http::Request&, http::Reply reply) {
    if (!accounting_.report) {
      reply.send(error_response(404, "cost accounting is not configured on this server", "not_found_error"));
      return;
    }
    reply.send(json_response(200, dump(accounting_.report(engine_.metrics()))));
  });
}

void Server::generate(Endpoint endpoint, const http::Request& req, const http::Reply& reply) {
  if (refused_while_draining(reply)) return;
  ParsedRequest pr;
  std::shared_ptr<engine::RequestStream> stream;
  try {
    pr = parse_request(endpoint, req.body, protocol_);
    if (reply.abandoned()) return;  // the client left while its prompt was being tokenized
    stream = engine_.submit(*pr.request);  // validated by parse_request: queued as it is
  } catch (const Error& e) {
    reply.send(refusal(e));
    return;
  }
  attach(pr, stream, reply);
}

bool Server::refused_while_draining(const http::Reply& reply) const {
  // Checked before parsing, so a draining server spends nothing on a request it will refuse.
  if (engine_.accepting()) return false;
  auto r = error_response(503, "the server is shutting down", "service_unavailable_error");
  r.headers.emplace_back("Retry-After", "5");
  reply.send(std::move(r));
  return true;
}

http::Response Server::refusal(const Error& e) const {
  if (auto* api = dynamic_cast<const ApiError*>(&e)) return error_response(api->status, e.what(), api->type, api->param, api->code);
  if (auto* bad = dynamic_cast<const engine::InvalidRequest*>(&e))
    return error_response(400, e.what(), "invalid_request_error", bad->field, bad->code);
  if (dynamic_cast<const engine::QueueFull*>(&e)) {
    // Read once: a drain starting between reads would mix a 429 status with a 503 body.
    const bool accepting = engine_.accepting();
    auto r = error_response(accepting ? 429 : 503, e.what(), accepting ? "rate_limit_error" : "service_unavailable_error",
                            {}, accepting ? "rate_limit_exceeded" : "");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  // Anything else the request's content made the parser or tokenizer refuse.
  return error_response(400, e.what(), "invalid_request_error");
}

void Server::attach(const ParsedRequest& pr, const std::shared_ptr<engine::RequestStream>& stream,
                    const http::Reply& reply) {
  auto p = std::make_shared<Pump>(pr, stream, reply);
  // Whoever leaves first: a client gone before the end cancels the request (streaming or not),
  // so no batch slot or KV block works for nobody.
  reply.on_abandon([this, stream] { engine_.cancel(stream); });
  if (p->reply_shape.streaming()) {
    http::Response head;
    head.content_type = "text/event-stream";
    head.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
    head.body = p->reply_shape.events({}, engine_.tokenizer());  // chat: the role chunk, at once
    reply.begin_stream(std::move(head));
  }
  auto post = http_.poster();
  stream->set_listener([this, post, p] {
    if (!p->scheduled.exchange(true)) post([this, p] { pump(p); });
  });
}

void Server::pump(const std::shared_ptr<Pump>& p) {
  p->scheduled = false;  // before reading: news arriving from here on schedules another pump
  if (p->finished) return;
  std::vector<engine::ChoiceUpdate> ups;
  const bool done = p->stream->wait(ups, 0);
  const tokenizer::Tokenizer& tok = engine_.tokenizer();
  try {
    if (p->reply_shape.streaming()) {
      std::string out = p->reply_shape.events(ups, tok);
      if (done) out += p->reply_shape.closing_events(p->stream->error(), p->stream->usage());
      if (!out.empty()) p->reply.write(std::move(out));
      if (done) p->reply.end();
    } else {
      p->reply_shape.accumulate(ups, tok);
      if (done) {
        const std::string err = p->stream->error();
        p->reply.send(err.empty() ? json_response(200, dump(p->reply_shape.body(p->stream->usage())))
                                  : error_response(500, err, "server_error"));
      }
    }
    p->finished = done;
  } catch (const std::exception& e) {
    // Formatting this request's output failed (say, a token the tokenizer cannot print): it
    // ends, with the reason, and nothing else notices.
    log_warn("request ", p->stream->id, " failed while formatting its reply: ", e.what());
    engine_.cancel(p->stream);
    std::string why = str("cannot format the reply: ", e.what());
    if (p->reply_shape.streaming()) {
      p->reply.write("data: " + error_body(500, why, "server_error") + "\n\ndata: [DONE]\n\n");
      p->reply.end();
    } else {
      p->reply.send(error_response(500, why, "server_error"));
    }
    p->finished = true;
  }
}

int Server::bind() { return http_.bind(); }

void Server::serve() { http_.run(); }

void Server::stop() { http_.stop(); }

void Server::drain() {
  engine_.stop_accepting();
  http_.begin_drain();
  double deadline = now_seconds() + options_.drain_timeout_s;
  while (!engine_.idle() && now_seconds() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!engine_.idle()) {
    log_warn("drain timeout: ending ", "the requests still in flight");
    engine_.abort_all();
  }
  // The last chunks and [DONE] get a short grace to go out; a client that does not read them
  // cannot hold the process longer than this.
  double end = now_seconds() + options_.drain_grace_s;
  while ((http_.responses_in_flight() > 0 || !engine_.idle()) && now_seconds() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http_.stop();
}

}  // namespace dsinfer::serve
