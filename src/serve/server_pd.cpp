// The server's prefill/decode endpoints (docs/serving.md, "Disaggregated serving"), which only the
// router calls:
//   GET  /pd/status                   every role: the load the balancers read, the KV layout and
//                                     the UCX address of this instance
//   POST /pd/reserve/<api path>       decode: parse the client's body as the API does (its errors
//                                     are the API's), reserve KV blocks for the prompt, and answer
//                                     the transfer id, prompt length, prompt hash and prefix keys
//   POST /pd/decode                   decode: the reply to the client's request (streamed or
//                                     whole, exactly as the API's), once its KV has arrived
//   POST /pd/cancel                   decode: drop a reservation the router gave up on
//   POST /pd/prefill/<api path>       prefill: compute the prompt, send its KV and first token to
//                                     the decode instance named in the headers; answer when the
//                                     last message is acknowledged
// The transfer's parameters travel in X-Dsinfer-* headers: transfer id, attempt, the decode
// instance's UCX address, its KV layout and prompt hash (checked here: an instance with another
// model, cache dtype or tokenizer refuses instead of sending KV that means something else).
#include <random>

#include "base/hash.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/timer.h"
#include "cache/block_hash.h"
#include "serve/api_error.h"
#include "serve/server.h"

namespace dsinfer::serve {

using nlohmann::json;

const char* pd_role_name(PdRole r) {
  switch (r) {
    case PdRole::kPrefill: return "prefill";
    case PdRole::kDecode: return "decode";
    default: return "both";
  }
}

namespace {

// A 16-digit hex header value; throws ApiError naming the header.
uint64_t header_hex64(const http::Request& req, const char* name) {
  const std::string* v = req.header(name);
  uint64_t out = 0;
  if (!v || !parse_hex64(*v, out)) throw ApiError(400, str("missing or malformed ", name, " header (16 hex digits)"));
  return out;
}

// Prefix keys a reservation reports (the router's affinity): 4,096 blocks, 262,144 tokens.
constexpr int64_t kMaxPrefixKeys = 4096;

uint64_t prompt_hash(const std::vector<int32_t>& prompt) {
  return fingerprint_bytes(0x70726f6d7074ull, prompt.data(), prompt.size() * sizeof(int32_t));
}

uint64_t new_transfer_id() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t base = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  uint64_t id = mix64(base + counter.fetch_add(1) * 0x9e3779b97f4a7c15ull);
  return id == 0 ? 1 : id;
}

}  // namespace

// A decode instance's request between its reservation and the router's /pd/decode call.
struct Server::Reservation {
  ParsedRequest pr;
  std::shared_ptr<engine::RequestStream> stream;
  std::shared_ptr<engine::KvImport> import;
  double done_seen = 0;  // when a sweep first found its stream finished
};

void Server::pd_routes() {
  const auto spec = engine_.model().cache_spec();
  kv_layout_ = str("fingerprint=", hex64(engine_.model().fingerprint()), ";dtype=", dtype_name(spec.dtype),
                   ";block=", spec.block_size, ";row=", spec.row_bytes(), ";layers=", spec.num_layers);
  http_.route("GET", "/pd/status", [this](http::Request&, http::Reply reply) {
    reply.send(json_response(200, dump(pd_status())));
  });
  if (options_.role == PdRole::kBoth) return;
  check(options_.kv_agent != nullptr, "the ", pd_role_name(options_.role), " role needs a UCX agent");
  if (options_.role == PdRole::kDecode) {
    receiver_ = std::make_unique<pd::KvReceiver>();
    // The agent must stop delivering before the receiver goes (cmd_serve.cpp ends it first).
    options_.kv_agent->set_receiver(
        [r = receiver_.get()](uint64_t tag, std::vector<uint8_t>&& msg) { r->on_message(tag, std::move(msg)); });
    http_.route("POST", "/pd/reserve/v1/chat/completions",
                [this](http::Request& req, http::Reply reply) { pd_reserve(Endpoint::kChat, req, reply); },
                http::RunOn::kWorker);
    http_.route("POST", "/pd/reserve/v1/completions",
                [this](http::Request& req, http::Reply reply) { pd_reserve(Endpoint::kCompletion, req, reply); },
                http::RunOn::kWorker);
    http_.route("POST", "/pd/decode", [this](http::Request& req, http::Reply reply) { pd_decode(req, reply); });
    http_.route("POST", "/pd/cancel", [this](http::Request& req, http::Reply reply) { pd_cancel(req, reply); });
    return;
  }
  prefill_jobs_ = std::make_unique<pd::PrefillJobs>();
  http_.route("POST", "/pd/prefill/v1/chat/completions",
              [this](http::Request& req, http::Reply reply) { pd_prefill(Endpoint::kChat, req, reply); },
              http::RunOn::kWorker);
  http_.route("POST", "/pd/prefill/v1/completions",
              [this](http::Request& req, http::Reply reply) { pd_prefill(Endpoint::kCompletion, req, reply); },
              http::RunOn::kWorker);
}

void Server::stop_pd() {
  if (prefill_jobs_) prefill_jobs_->stop();
}

json Server::pd_status() const {
  const auto m = engine_.metrics();
  json j = {{"role", pd_role_name(options_.role)},
            {"accepting", engine_.accepting()},
            // The balancers' "running" is every request the instance holds (running, queued, or
            // reserved and waiting for its KV); "waiting" the part not yet scheduled.
            {"running", m.running + m.waiting + m.importing},
            {"waiting", m.waiting + m.importing},
            {"importing", m.importing},
            {"prefill_tokens", m.prefill_tokens},
            {"attention_work", m.attention_work},
            {"kv_blocks_used", m.kv_blocks_used},
            {"kv_blocks_total", m.kv_blocks_total},
            {"block_size", engine_.model().cache_spec().block_size},
            {"kv_layout", kv_layout_}};
  if (options_.kv_agent) j["transfer_address"] = options_.kv_agent->address_hex();
  return j;
}

void Server::pd_reserve(Endpoint endpoint, const http::Request& req, const http::Reply& reply) {
  if (refused_while_draining(reply)) return;
  auto res = std::make_shared<Reservation>();
  try {
    res->pr = parse_request(endpoint, req.body, protocol_);
    const int64_t prompt = int64_t(res->pr.prompt().size());
    res->import = std::make_shared<engine::KvImport>(prompt, options_.kv_transfer_timeout_s);
    res->stream = engine_.submit_import(*res->pr.request, res->import);
  } catch (const Error& e) {
    reply.send(refusal(e));
    return;
  }
  // The step thread reserves between steps: a step takes milliseconds to a few seconds.
  const auto state = res->import->wait_reserved(std::min(10.0, options_.kv_transfer_timeout_s));
  if (state != engine::KvImport::State::kReserved) {
    engine_.cancel(res->stream);
    ++imports_refused_;
    const std::string why = state == engine::KvImport::State::kFailed ? res->import->error()
                                                                       : std::string("the KV reservation timed out");
    auto r = error_response(503, why, "service_unavailable_error");
    r.headers.emplace_back("Retry-After", "1");
    reply.send(std::move(r));
    return;
  }
  const uint64_t id = new_transfer_id();
  receiver_->expect(id, res->import);
  const auto& prompt = res->pr.prompt();
  const int64_t bs = engine_.model().cache_spec().block_size;
  json keys = json::array();
  for (uint64_t k : cache::prefix_keys(prompt.data(), int64_t(prompt.size()), bs, engine_.model().fingerprint(),
                                       kMaxPrefixKeys))
    keys.push_back(hex64(k));
  json body = {{"transfer", hex64(id)},
               {"prompt_tokens", int64_t(prompt.size())},
               {"prompt_hash", hex64(prompt_hash(prompt))},
               {"prefix_keys", std::move(keys)},
               {"kv_layout", kv_layout_},
               {"transfer_address", options_.kv_agent->address_hex()},
               {"timeout_s", options_.kv_transfer_timeout_s}};
  {
    std::lock_guard lock(pd_mu_);
    // Reservations the router never came back for. A finished stream is not enough: a short
    // request can be decoded whole before the router asks for its reply, which the stream keeps;
    // one finished for a whole transfer timeout has nobody coming for it.
    const double now = now_seconds();
    for (auto it = reservations_.begin(); it != reservations_.end();) {
      Reservation& r = *it->second;
      if (r.stream->done() && r.done_seen == 0) r.done_seen = now;
      const bool abandoned = r.done_seen > 0 && now - r.done_seen > options_.kv_transfer_timeout_s;
      it = abandoned ? reservations_.erase(it) : std::next(it);
    }
    reservations_[id] = res;
  }
  reply.send(json_response(200, dump(body)));
}

void Server::pd_decode(const http::Request& req, const http::Reply& reply) {
  std::shared_ptr<Reservation> res;
  try {
    const uint64_t id = header_hex64(req, "x-dsinfer-transfer");
    std::lock_guard lock(pd_mu_);
    auto it = reservations_.find(id);
    if (it == reservations_.end())
      throw ApiError(404, str("no reservation ", hex64(id), " (unknown, cancelled or expired)"), "not_found_error");
    res = std::move(it->second);
    reservations_.erase(it);
  } catch (const Error& e) {
    reply.send(refusal(e));
    return;
  }
  ++imports_started_;
  attach(res->pr, res->stream, reply);
}

void Server::pd_cancel(const http::Request& req, const http::Reply& reply) {
  try {
    const uint64_t id = header_hex64(req, "x-dsinfer-transfer");
    std::shared_ptr<Reservation> res;
    {
      std::lock_guard lock(pd_mu_);
      auto it = reservations_.find(id);
      if (it != reservations_.end()) {
        res = std::move(it->second);
        reservations_.erase(it);
      }
    }
    if (res) engine_.cancel(res->stream);
    reply.send(json_response(200, dump({{"cancelled", res != nullptr}})));
  } catch (const Error& e) {
    reply.send(refusal(e));
  }
}

void Server::pd_prefill(Endpoint endpoint, const http::Request& req, const http::Reply& reply) {
  if (refused_while_draining(reply)) return;
  auto job = std::make_shared<pd::PrefillJobs::Job>();
  job->reply = reply;
  try {
    pd::ExportTarget target;
    target.transfer = header_hex64(req, "x-dsinfer-transfer");
    const std::string* attempt = req.header("x-dsinfer-attempt");
    target.attempt = attempt ? uint32_t(std::strtoul(attempt->c_str(), nullptr, 10)) : 0;
    const std::string* address = req.header("x-dsinfer-decode-address");
    if (!address) throw ApiError(400, "missing X-Dsinfer-Decode-Address header");
    target.peer = bytes_from_hex(*address, "X-Dsinfer-Decode-Address");
    const std::string* layout = req.header("x-dsinfer-kv-layout");
    if (!layout || *layout != kv_layout_)
      throw ApiError(409, str("the decode instance's KV layout (", layout ? *layout : "none",
                              ") differs from this prefill instance's (", kv_layout_,
                              "): both must serve the same model with the same --kv-cache-dtype, and both with or both "
                              "without --speculative mtp (its module's KV layer travels too)"));
    ParsedRequest pr = parse_request(endpoint, req.body, protocol_);
    const uint64_t want = header_hex64(req, "x-dsinfer-prompt-hash");
    if (prompt_hash(pr.prompt()) != want)
      throw ApiError(409, "the prefill and decode instances tokenize this request differently (different tokenizer files?)");
    // The prefill side samples the first token of choice 0 only; the decode side does the rest.
    engine::ValidatedRequest vr = pr.request->first_token_only();
    const int64_t prompt = int64_t(pr.prompt().size());
    job->exporter = std::make_shared<pd::KvExporter>(*options_.kv_agent, std::move(target), prompt,
                                                     engine_.model().cache_spec().num_layers, export_totals_);
    job->timeout_s = options_.kv_transfer_timeout_s;
    pd::PrefillJobs* jobs = prefill_jobs_.get();
    job->exporter->set_on_complete([jobs] { jobs->wake(); });
    job->stream = engine_.submit(std::move(vr), job->exporter);
  } catch (const Error& e) {
    reply.send(refusal(e));
    return;
  }
  auto stream = job->stream;
  auto exporter = job->exporter;
  reply.on_abandon([this, stream, exporter] {
    engine_.cancel(stream);
    exporter->abandon("the router went away");
  });
  pd::PrefillJobs* jobs = prefill_jobs_.get();
  stream->set_listener([jobs] { jobs->wake(); });
  jobs->add(std::move(job));
}

std::string Server::pd_metrics_text() const {
  std::string out = str("# HELP dsinfer_pd_role This instance's role in disaggregated serving.\n# TYPE dsinfer_pd_role gauge\n",
                        "dsinfer_pd_role{role=\"", pd_role_name(options_.role), "\"} 1\n");
  if (options_.role == PdRole::kPrefill) {
    const auto& t = export_totals_;
    out += str("# HELP dsinfer_pd_kv_sent_bytes_total KV bytes sent to decode instances (messages, as sent).\n",
               "# TYPE dsinfer_pd_kv_sent_bytes_total counter\ndsinfer_pd_kv_sent_bytes_total ", t.bytes.load(), "\n",
               "# TYPE dsinfer_pd_kv_sent_messages_total counter\ndsinfer_pd_kv_sent_messages_total ", t.messages.load(), "\n",
               "# HELP dsinfer_pd_transfers_total KV transfers completed or failed.\n# TYPE dsinfer_pd_transfers_total counter\n",
               "dsinfer_pd_transfers_total{result=\"ok\"} ", t.transfers.load(), "\n",
               "dsinfer_pd_transfers_total{result=\"failed\"} ", t.failed.load(), "\n",
               "# HELP dsinfer_pd_transfer_seconds_total Summed per transfer: first message queued to last acknowledged.\n",
               "# TYPE dsinfer_pd_transfer_seconds_total counter\ndsinfer_pd_transfer_seconds_total ",
               double(t.micros_total.load()) / 1e6, "\n",
               "# HELP dsinfer_pd_transfer_exposed_seconds_total Summed per transfer: the part after the prompt's compute ended.\n",
               "# TYPE dsinfer_pd_transfer_exposed_seconds_total counter\ndsinfer_pd_transfer_exposed_seconds_total ",
               double(t.micros_exposed.load()) / 1e6, "\n");
  }
  if (options_.role == PdRole::kDecode && receiver_) {
    const auto& t = receiver_->totals();
    out += str("# HELP dsinfer_pd_kv_received_bytes_total KV transfer bytes received.\n",
               "# TYPE dsinfer_pd_kv_received_bytes_total counter\ndsinfer_pd_kv_received_bytes_total ", t.bytes.load(), "\n",
               "# HELP dsinfer_pd_kv_rejected_total KV messages rejected, by reason (never written).\n",
               "# TYPE dsinfer_pd_kv_rejected_total counter\n",
               "dsinfer_pd_kv_rejected_total{reason=\"checksum\"} ", t.checksum_failures.load(), "\n",
               "dsinfer_pd_kv_rejected_total{reason=\"malformed\"} ", t.malformed.load(), "\n",
               "dsinfer_pd_kv_rejected_total{reason=\"unknown_transfer\"} ", t.unexpected.load(), "\n",
               "# HELP dsinfer_pd_imports_total Reservations decoded, or refused (no KV room).\n",
               "# TYPE dsinfer_pd_imports_total counter\n",
               "dsinfer_pd_imports_total{result=\"decoded\"} ", imports_started_.load(), "\n",
               "dsinfer_pd_imports_total{result=\"refused\"} ", imports_refused_.load(), "\n");
  }
  return out;
}

}  // namespace dsinfer::serve
