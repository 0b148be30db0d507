#include "serve/server.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "base/log.h"
#include "base/timer.h"
#include "serve/api_error.h"
#include "serve/reasoning.h"

namespace dsinfer::serve {

using nlohmann::json;

namespace {

const char* kJson = "application/json";

std::string known_path(const std::string& p) {
  for (const char* k : {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/v1/accounting"})
    if (p == k) return k;
  return "other";
}

const char* type_for(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 404: return "not_found_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

json finish_json(engine::FinishReason f) {
  if (f == engine::FinishReason::kNone) return nullptr;
  return engine::finish_reason_name(f);
}

}  // namespace

// What one response (streamed or not) accumulates while the engine produces it.
struct Server::StreamState {
  Endpoint endpoint;
  std::shared_ptr<engine::RequestStream> stream;
  std::string id, model;
  int64_t created = 0;
  bool include_usage = false, want_logprobs = false, stream_mode = false;
  bool role_sent = false, finished_sent = false;
  std::vector<ReasoningSplitter> splitters;
  std::vector<int64_t> text_offsets;
  // Non-streaming accumulation, per choice.
  std::vector<std::string> content, reasoning;
  std::vector<json> logprobs;
  std::vector<engine::FinishReason> finish;

  StreamState(const ParsedRequest& pr, std::shared_ptr<engine::RequestStream> s, std::string model_name)
      : endpoint(pr.endpoint), stream(std::move(s)), model(std::move(model_name)) {
    size_t n = size_t(pr.params.n);
    include_usage = pr.include_usage;
    want_logprobs = pr.want_logprobs;
    stream_mode = pr.stream;
    splitters.assign(n, ReasoningSplitter(pr.prompt_opens_reasoning));
    text_offsets.assign(n, 0);
    content.resize(n);
    reasoning.resize(n);
    logprobs.assign(n, nullptr);
    finish.assign(n, engine::FinishReason::kNone);
    created = int64_t(std::time(nullptr));
    id = str(pr.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-", std::hex, stream->id, "x",
             uint64_t(now_seconds() * 1e6));
  }

  json chunk_head() const {
    return {{"id", id},
            {"object", endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
            {"created", created},
            {"model", model}};
  }

  // One update as a streamed chunk's choice, or folded into the non-streamed totals. Returns a
  // null json when the update carries nothing to send.
  json apply(const engine::ChoiceUpdate& u, const tokenizer::Tokenizer& tok) {
    size_t i = size_t(u.index);
    std::string r, c;
    if (endpoint == Endpoint::kChat) {
      splitters[i].push(u.text, r, c);
      if (u.finish != engine::FinishReason::kNone) splitters[i].flush(r, c);
    } else {
      c = u.text;
    }
    json lp = nullptr;
    if (want_logprobs && !u.logprobs.empty())
      lp = endpoint == Endpoint::kChat ? chat_logprobs_json(tok, u.logprobs)
                                       : completion_logprobs_json(tok, u.logprobs, text_offsets[i]);
    if (u.finish != engine::FinishReason::kNone) finish[i] = u.finish;
    if (!stream_mode) {
      content[i] += c;
      reasoning[i] += r;
      if (!lp.is_null()) {
        if (endpoint == Endpoint::kChat) {
          if (logprobs[i].is_null()) logprobs[i] = {{"content", json::array()}};
          for (auto& x : lp["content"]) logprobs[i]["content"].push_back(x);
        } else {
          merge_completion_logprobs(logprobs[i], lp);
        }
      }
      return nullptr;
    }
    if (c.empty() && r.empty() && lp.is_null() && u.finish == engine::FinishReason::kNone) return nullptr;
    json choice = {{"index", u.index}, {"logprobs", lp}, {"finish_reason", finish_json(u.finish)}};
    if (endpoint == Endpoint::kChat) {
      json delta = json::object();
      if (!r.empty()) delta["reasoning_content"] = r;
      if (!c.empty()) delta["content"] = c;
      choice["delta"] = delta;
    } else {
      choice["text"] = c;
    }
    return choice;
  }

  std::string sse(json j) const {
    if (include_usage && !j.contains("usage")) j["usage"] = nullptr;
    return "data: " + dump(j) + "\n\n";
  }
};

Server::Server(engine::Engine& engine, ServerOptions options, AccountingHooks accounting)
    : engine_(engine), options_(std::move(options)), accounting_(std::move(accounting)) {
  check(!options_.model_names.empty(), "the server needs a model name");
  protocol_.tokenizer = &engine_.tokenizer();
  protocol_.model_names = options_.model_names;
  protocol_.max_model_len = engine_.max_model_len();
  protocol_.kv_capacity_tokens = engine_.kv_capacity_tokens();
  http_ = std::make_unique<httplib::Server>();
  int threads = options_.http_threads > 0
                    ? options_.http_threads
                    : int(engine_.options().max_running + engine_.options().max_queued + 32);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_timeout(options_.keep_alive_timeout_s);
  http_->set_keep_alive_max_count(10000);
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(30, 0);
  started_ = double(std::time(nullptr));
  routes();
}

Server::~Server() = default;

void Server::count(const std::string& path, int status) {
  std::lock_guard lock(counters_mu_);
  ++counters_.requests[{known_path(path), status}];
}

void Server::reply_error(httplib::Response& res, int status, const std::string& message, const std::string& type,
                         const std::string& param, const std::string& code) {
  res.status = status;
  res.set_content(error_body(status, message, type, param, code), kJson);
}

void Server::routes() {
  auto& h = *http_;
  h.set_logger([this](const httplib::Request& req, const httplib::Response& res) { count(req.path, res.status); });
  // Fills in an OpenAI-shaped body for every error reply that has none (404, 413 from httplib).
  h.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 404   ? str("no route for ", req.method, " ", req.path)
                      : res.status == 413 ? "the request body is too large"
                                          : str("HTTP ", res.status);
    res.set_content(error_body(res.status, msg, type_for(res.status), {}, res.status == 413 ? "request_too_large" : ""),
                    kJson);
  });
  h.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(error_body(500, what, "server_error"), kJson);
  });

  h.Post("/v1/chat/completions",
         [this](const httplib::Request& req, httplib::Response& res) { generate(Endpoint::kChat, req, res); });
  h.Post("/v1/completions",
         [this](const httplib::Request& req, httplib::Response& res) { generate(Endpoint::kCompletion, req, res); });
  h.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& name : options_.model_names)
      data.push_back({{"id", name},
                      {"object", "model"},
                      {"created", int64_t(started_)},
                      {"owned_by", "dsinfer"},
                      {"max_model_len", engine_.max_model_len()}});
    res.set_content(dump({{"object", "list"}, {"data", data}}), kJson);
  });
  h.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    bool ok = engine_.accepting();
    res.status = ok ? 200 : 503;
    res.set_content(dump({{"status", ok ? "ok" : "draining"}}), kJson);
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto m = engine_.metrics();
    HttpCounters c;
    {
      std::lock_guard lock(counters_mu_);
      c = counters_;
    }
    std::string text = render_metrics(m, c, options_.model_names[0]);
    if (accounting_.metrics_text) text += accounting_.metrics_text(m);
    res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
  });
  h.Get("/v1/accounting", [this](const httplib::Request& req, httplib::Response& res) {
    if (!accounting_.report) {
      reply_error(res, 404, "cost accounting is not configured on this server", "not_found_error");
      return;
    }
    res.set_content(dump(accounting_.report(engine_.metrics())), kJson);
  });
}

void Server::generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
  if (!engine_.accepting()) {
    res.set_header("Retry-After", "5");
    reply_error(res, 503, "the server is shutting down", "service_unavailable_error");
    return;
  }
  ParsedRequest pr;
  std::shared_ptr<engine::RequestStream> stream;
  try {
    pr = parse_request(endpoint, req.body, protocol_);
    stream = engine_.submit(pr.prompt, pr.params);
  } catch (const ApiError& e) {
    reply_error(res, e.status, e.what(), e.type, e.param, e.code);
    return;
  } catch (const engine::QueueFull& e) {
    // Read once: a drain starting between reads would mix a 429 status with a 503 body.
    const bool accepting = engine_.accepting();
    res.set_header("Retry-After", "1");
    reply_error(res, accepting ? 429 : 503, e.what(), accepting ? "rate_limit_error" : "service_unavailable_error", {},
                accepting ? "rate_limit_exceeded" : "");
    return;
  } catch (const Error& e) {
    reply_error(res, 400, e.what(), "invalid_request_error");
    return;
  }
  auto st = std::make_shared<StreamState>(pr, stream, pr.model);
  const tokenizer::Tokenizer& tok = engine_.tokenizer();

  if (!pr.stream) {
    std::vector<engine::ChoiceUpdate> ups;
    bool done = false;
    while (!done) {
      ups.clear();
      done = stream->wait(ups, 1.0);
      for (const auto& u : ups) st->apply(u, tok);
    }
    if (!stream->error().empty()) {
      reply_error(res, 500, stream->error(), "server_error");
      return;
    }
    json choices = json::array();
    for (size_t i = 0; i < st->content.size(); ++i) {
      json c = {{"index", i}, {"logprobs", st->logprobs[i]}, {"finish_reason", finish_json(st->finish[i])}};
      if (endpoint == Endpoint::kChat) {
        json msg = {{"role", "assistant"}, {"content", st->content[i]}};
        if (!st->reasoning[i].empty()) msg["reasoning_content"] = st->reasoning[i];
        c["message"] = msg;
      } else {
        c["text"] = st->content[i];
      }
      choices.push_back(c);
    }
    json body = {{"id", st->id},
                 {"object", endpoint == Endpoint::kChat ? "chat.completion" : "text_completion"},
                 {"created", st->created},
                 {"model", st->model},
                 {"choices", choices},
                 {"usage", usage_json(stream->usage())}};
    res.set_content(dump(body), kJson);
    return;
  }

  ++active_;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, st, &tok](size_t, httplib::DataSink& sink) {
        if (st->finished_sent) {
          sink.done();
          return true;
        }
        std::vector<engine::ChoiceUpdate> ups;
        bool done = st->stream->wait(ups, 0.5);
        std::string out;
        if (!st->role_sent && st->endpoint == Endpoint::kChat) {
          for (size_t i = 0; i < st->content.size(); ++i) {
            json j = st->chunk_head();
            j["choices"] = json::array(
                {{{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
            out += st->sse(j);
          }
          st->role_sent = true;
        }
        for (const auto& u : ups) {
          json choice = st->apply(u, tok);
          if (choice.is_null()) continue;
          json j = st->chunk_head();
          j["choices"] = json::array({choice});
          out += st->sse(j);
        }
        if (done) {
          if (!st->stream->error().empty())
            out += "data: " + error_body(500, st->stream->error(), "server_error") + "\n\n";
          if (st->include_usage) {
            json j = st->chunk_head();
            j["choices"] = json::array();
            j["usage"] = usage_json(st->stream->usage());
            out += st->sse(j);
          }
          out += "data: [DONE]\n\n";
        }
        // An SSE comment while nothing happens: finds a client that has gone away early.
        if (out.empty()) out = ": keep-alive\n\n";
        if (!sink.write(out.data(), out.size())) return false;
        if (done) {
          st->finished_sent = true;
          sink.done();
        }
        return true;
      },
      [this, st](bool) {
        // The stream is over: normally, or because the client went away. Either way the
        // request must not keep its sequences and KV blocks.
        if (!st->stream->done()) engine_.cancel(st->stream);
        --active_;
      });
}

int Server::bind() {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    check(port > 0, "cannot bind ", options_.host, " to any port");
  } else {
    check(http_->bind_to_port(options_.host, port), "cannot bind ", options_.host, ":", port,
          " (in use, or not an address of this machine)");
  }
  return port;
}

void Server::serve() { http_->listen_after_bind(); }

void Server::stop() { http_->stop(); }

void Server::drain() {
  engine_.stop_accepting();
  double deadline = now_seconds() + options_.drain_timeout_s;
  while (!engine_.idle() && now_seconds() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!engine_.idle()) {
    log_warn("drain timeout: ending ", "the requests still in flight");
    engine_.abort_all();
  }
  // Let the stream handlers write their last chunks and [DONE].
  double end = now_seconds() + 5;
  while ((active_ > 0 || !engine_.idle()) && now_seconds() < end) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http_->stop();
}

}  // namespace dsinfer::serve
