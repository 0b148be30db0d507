// dsinfer bench: a load generator that speaks the OpenAI API (streaming /v1/completions with
// token-id prompts, so lengths are exact). Fixed concurrency levels or open-loop Poisson arrival
// rates; prompt and output lengths drawn uniformly around a mean; a shared-prefix ratio. Reports
// request throughput, input/output tokens/s, TTFT, TPOT and ITL percentiles as JSON, and a PNG of
// latency against throughput (gnuplot). --prefix-ttft N measures TTFT of an N-token prompt cold
// and then prefix-cached.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/timer.h"
#include "command.h"
#include "percentile.h"

namespace dsinfer::app {
namespace {

using nlohmann::json;

struct Target {
  std::string host;
  int port = 0;
  std::string model;
};

struct Sample {
  bool ok = false;
  std::string error;
  int64_t input = 0, output = 0, cached = 0;
  int64_t disk_cached = 0;  // of `cached`, what the server's disk tier loaded
  double ttft = 0, e2e = 0;
  std::vector<double> itl;
};

Target parse_url(const std::string& url) {
  std::string u = url;
  check(u.rfind("http://", 0) == 0, "--url must start with http://, got '", url, "'");
  u = u.substr(7);
  while (!u.empty() && u.back() == '/') u.pop_back();
  size_t colon = u.rfind(':');
  check(colon != std::string::npos, "--url needs a port, e.g. http://127.0.0.1:8000");
  Target t;
  t.host = u.substr(0, colon);
  t.port = std::atoi(u.substr(colon + 1).c_str());
  check(t.port > 0 && t.port < 65536, "bad port in --url '", url, "'");
  return t;
}

// One streamed completion; times every chunk that carries text.
Sample run_one(const Target& t, const std::vector<int32_t>& prompt, int64_t max_tokens, double timeout_s) {
  Sample s;
  s.input = int64_t(prompt.size());
  httplib::Client cli(t.host, t.port);
  cli.set_read_timeout(std::chrono::seconds(int64_t(timeout_s)));
  cli.set_connection_timeout(std::chrono::seconds(10));
  json body = {{"model", t.model},  {"prompt", prompt},          {"max_tokens", max_tokens},
               {"temperature", 0},  {"ignore_eos", true},        {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string buf;
  double t0 = now_seconds(), last = 0;
  bool first = true;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    size_t end;
    while ((end = buf.find("\n\n")) != std::string::npos) {
      std::string ev = buf.substr(0, end);
      buf.erase(0, end + 2);
      if (ev.rfind("data: ", 0) != 0) continue;
      std::string payload = ev.substr(6);
      if (payload == "[DONE]") continue;
      json j = json::parse(payload, nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("usage") && j["usage"].is_object()) {
        s.output = j["usage"].value("completion_tokens", int64_t(0));
        s.cached = j["usage"]["prompt_tokens_details"].value("cached_tokens", int64_t(0));
        s.disk_cached = j["usage"].value("prompt_cache_hit_disk_tokens", int64_t(0));
      }
      if (j.contains("error")) s.error = j["error"].value("message", "error");
      if (!j.contains("choices") || j["choices"].empty()) continue;
      double now = now_seconds();
      if (first) {
        s.ttft = now - t0;
        first = false;
      } else {
        s.itl.push_back(now - last);
      }
      last = now;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err;
  bool ok = cli.send(req, res, err);
  s.e2e = now_seconds() - t0;
  if (!ok) {
    s.error = str("connection: ", httplib::to_string(err));
  } else if (res.status != 200) {
    s.error = str("HTTP ", res.status, ": ", res.body.substr(0, 200));
  } else if (s.error.empty() && !first) {
    s.ok = true;
  } else if (s.error.empty()) {
    s.error = "no tokens";
  }
  return s;
}


json dist(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  return {{"mean_ms", v.empty() ? 0 : mean / double(v.size()) * 1e3},
          {"p50_ms", percentile(v, 50) * 1e3},
          {"p90_ms", percentile(v, 90) * 1e3},
          {"p99_ms", percentile(v, 99) * 1e3}};
}

struct Workload {
  int64_t input_len = 256, output_len = 64;
  double input_spread = 0, output_spread = 0, shared_prefix = 0;
  uint64_t seed = 0;
  // A mixed load: this share of the requests has long prompts (a document to summarise among
  // chat turns), reported as a class of its own.
  double long_fraction = 0;
  int64_t long_input_len = 3072;
  double long_input_spread = 0.33;
  // The served model's vocabulary (GET /v1/models says; DeepSeek-V3's when it does not):
  // prompts draw ordinary tokens from [vocab / 128, vocab * 3 / 4), clear of the specials.
  int64_t vocab = 129280;
};

std::vector<int32_t> random_tokens(std::mt19937_64& rng, int64_t n, int64_t vocab) {
  std::uniform_int_distribution<int32_t> d(int32_t(vocab / 128), int32_t(vocab * 3 / 4));
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

struct Job {
  std::vector<int32_t> prompt;
  int64_t output = 0;
  bool is_long = false;
};

std::vector<Job> make_jobs(const Workload& w, int64_t count, uint64_t salt) {
  std::mt19937_64 rng(w.seed * 1000003 + salt);
  std::mt19937_64 prefix_rng(w.seed);  // the same shared prefix in every run
  auto len = [&](int64_t mean, double spread) {
    int64_t lo = std::max<int64_t>(1, int64_t(double(mean) * (1 - spread)));
    int64_t hi = std::max(lo, int64_t(double(mean) * (1 + spread)));
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto prefix = random_tokens(prefix_rng, int64_t(double(w.input_len) * w.shared_prefix), w.vocab);
  std::vector<Job> jobs;
  // Every k-th request is long (a fixed interleaving: the same mix in every run).
  const int64_t every = w.long_fraction > 0 ? std::max<int64_t>(1, int64_t(std::lround(1 / w.long_fraction))) : 0;
  for (int64_t i = 0; i < count; ++i) {
    Job j;
    j.is_long = every > 0 && i % every == every / 2;
    int64_t n = j.is_long ? len(w.long_input_len, w.long_input_spread) : len(w.input_len, w.input_spread);
    j.prompt.assign(prefix.begin(), prefix.begin() + std::min<int64_t>(n, int64_t(prefix.size())));
    auto rest = random_tokens(rng, n - int64_t(j.prompt.size()), w.vocab);
    j.prompt.insert(j.prompt.end(), rest.begin(), rest.end());
    j.output = len(w.output_len, w.output_spread);
    jobs.push_back(std::move(j));
  }
  return jobs;
}

// The server's speculative-decoding counters (GET /metrics), when it runs MTP: a level reports
// its own acceptance rate and tokens per decode step from their change over the level.
struct MtpCounters {
  bool present = false;
  double drafted = 0, accepted = 0, steps = 0, emitted = 0;
};

MtpCounters scrape_mtp(const Target& t) {
  MtpCounters c;
  httplib::Client cli(t.host, t.port);
  cli.set_read_timeout(std::chrono::seconds(10));
  auto res = cli.Get("/metrics");
  if (!res || res->status != 200) return c;
  auto value = [&](const std::string& name, double& out) {  // "name{labels} value" or "name value"
    for (size_t at = res->body.find("\n" + name); at != std::string::npos; at = res->body.find("\n" + name, at + 1)) {
      const char next = res->body[at + 1 + name.size()];
      if (next != ' ' && next != '{') continue;
      const size_t end = res->body.find('\n', at + 1);
      const size_t space = res->body.rfind(' ', end);
      out = std::atof(res->body.c_str() + space + 1);
      return true;
    }
    return false;
  };
  c.present = value("dsinfer_mtp_drafted_tokens_total", c.drafted) &&
              value("dsinfer_mtp_accepted_tokens_total", c.accepted) &&
              value("dsinfer_mtp_verify_steps_total", c.steps) && value("dsinfer_mtp_emitted_tokens_total", c.emitted);
  return c;
}

// Runs the jobs at a fixed concurrency (rate <= 0) or with Poisson arrivals at `rate` per second.
json run_level(const Target& t, const std::vector<Job>& jobs, int64_t concurrency, double rate, uint64_t seed,
               double timeout_s) {
  std::vector<Sample> samples(jobs.size());
  std::atomic<size_t> next{0};
  const MtpCounters mtp_before = scrape_mtp(t);
  double t0 = now_seconds();
  std::vector<std::thread> threads;
  if (rate <= 0) {
    for (int64_t c = 0; c < concurrency; ++c)
      threads.emplace_back([&] {
        for (size_t i; (i = next++) < jobs.size();) samples[i] = run_one(t, jobs[i].prompt, jobs[i].output, timeout_s);
      });
  } else {
    std::mt19937_64 rng(seed);
    std::exponential_distribution<double> gap(rate);
    double at = t0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      at += gap(rng);
      double wait = at - now_seconds();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      threads.emplace_back([&, i] { samples[i] = run_one(t, jobs[i].prompt, jobs[i].output, timeout_s); });
    }
  }
  for (auto& th : threads) th.join();
  double dur = now_seconds() - t0;
  std::vector<double> ttft, tpot, itl, e2e;
  std::vector<double> cls_ttft[2], cls_tpot[2], cls_itl[2];  // short, long
  int64_t in = 0, out = 0, cached = 0, disk_cached = 0, ok = 0;
  bool mixed = false;
  json errors = json::array();
  for (size_t k = 0; k < samples.size(); ++k) {
    const Sample& s = samples[k];
    if (!s.ok) {
      if (errors.size() < 5) errors.push_back(s.error);
      continue;
    }
    const int c = jobs[k].is_long ? 1 : 0;
    mixed |= c == 1;
    cls_ttft[c].push_back(s.ttft);
    if (s.output > 1) cls_tpot[c].push_back((s.e2e - s.ttft) / double(s.output - 1));
    cls_itl[c].insert(cls_itl[c].end(), s.itl.begin(), s.itl.end());
    ++ok;
    in += s.input;
    out += s.output;
    cached += s.cached;
    disk_cached += s.disk_cached;
    ttft.push_back(s.ttft);
    e2e.push_back(s.e2e);
    if (s.output > 1) tpot.push_back((s.e2e - s.ttft) / double(s.output - 1));
    itl.insert(itl.end(), s.itl.begin(), s.itl.end());
  }
  json r = {{"concurrency", rate > 0 ? json(nullptr) : json(concurrency)},
            {"request_rate", rate > 0 ? json(rate) : json(nullptr)},
            {"requests", jobs.size()},
            {"completed", ok},
            {"failed", int64_t(jobs.size()) - ok},
            {"duration_s", dur},
            {"request_throughput", double(ok) / dur},
            {"input_tokens_per_s", double(in) / dur},
            {"output_tokens_per_s", double(out) / dur},
            {"input_tokens", in},
            {"cached_input_tokens", cached},
            {"disk_cached_input_tokens", disk_cached},
            {"output_tokens", out},
            {"ttft", dist(ttft)},
            {"tpot", dist(tpot)},
            {"itl", dist(itl)},
            {"e2e", dist(e2e)}};
  if (mixed)
    for (int c = 0; c < 2; ++c)
      r[c ? "long" : "short"] = {{"completed", cls_ttft[c].size()},
                                 {"ttft", dist(cls_ttft[c])},
                                 {"tpot", dist(cls_tpot[c])},
                                 {"itl", dist(cls_itl[c])}};
  if (!errors.empty()) r["errors"] = errors;
  if (const MtpCounters after = scrape_mtp(t); mtp_before.present && after.present) {
    const double drafted = after.drafted - mtp_before.drafted, steps = after.steps - mtp_before.steps;
    r["mtp_acceptance_rate"] = drafted > 0 ? (after.accepted - mtp_before.accepted) / drafted : 0.0;
    r["tokens_per_step"] = steps > 0 ? (after.emitted - mtp_before.emitted) / steps : 0.0;
  }
  return r;
}

// Multi-turn chat: each conversation re-sends its whole history every turn, as a chat client
// does: turn k's prompt is turn k-1's, then the reply (random tokens standing for the assistant's
// answer as the client keeps it), then a new user message. Turn k of every conversation runs
// before turn k+1 of any, so with many conversations a conversation's earlier turns have to
// survive the others' traffic in the prefix cache: the hit ratio measures the cache's reach.
std::vector<std::vector<Job>> conversation_turns(const Workload& w, int64_t conversations, int64_t turns,
                                                 int64_t turn_len) {
  std::mt19937_64 rng(w.seed * 7919 + 17);
  std::vector<std::vector<int32_t>> history(static_cast<size_t>(conversations));
  std::vector<std::vector<Job>> out(static_cast<size_t>(turns));
  for (int64_t k = 0; k < turns; ++k)
    for (int64_t c = 0; c < conversations; ++c) {
      auto& h = history[size_t(c)];
      if (k > 0) {
        auto reply = random_tokens(rng, w.output_len, w.vocab);
        h.insert(h.end(), reply.begin(), reply.end());
      }
      auto user = random_tokens(rng, k == 0 ? w.input_len : turn_len, w.vocab);
      h.insert(h.end(), user.begin(), user.end());
      out[size_t(k)].push_back({h, w.output_len, false});
    }
  return out;
}

json run_conversations(const Target& t, const Workload& w, int64_t conversations, int64_t turns, int64_t turn_len,
                       int64_t concurrency, double timeout_s) {
  json per_turn = json::array();
  int64_t in = 0, cached = 0, disk = 0, failed = 0;
  for (const auto& jobs : conversation_turns(w, conversations, turns, turn_len)) {
    json level = run_level(t, jobs, concurrency, 0, 0, timeout_s);
    in += level["input_tokens"].get<int64_t>();
    cached += level["cached_input_tokens"].get<int64_t>();
    disk += level["disk_cached_input_tokens"].get<int64_t>();
    failed += level["failed"].get<int64_t>();
    per_turn.push_back({{"input_tokens", level["input_tokens"]},
                        {"cached_input_tokens", level["cached_input_tokens"]},
                        {"disk_cached_input_tokens", level["disk_cached_input_tokens"]},
                        {"ttft", level["ttft"]},
                        {"failed", level["failed"]}});
    std::fprintf(stderr, "turn %zu: %lld of %lld input tokens cached (%lld from disk), TTFT p50 %.0f ms\n",
                 per_turn.size(), (long long)level["cached_input_tokens"].get<int64_t>(),
                 (long long)level["input_tokens"].get<int64_t>(), (long long)level["disk_cached_input_tokens"].get<int64_t>(),
                 level["ttft"]["p50_ms"].get<double>());
  }
  return {{"conversations", conversations},
          {"turns", turns},
          {"turn_input_len", turn_len},
          {"concurrency", concurrency},
          {"input_tokens", in},
          {"cached_input_tokens", cached},
          {"disk_cached_input_tokens", disk},
          {"hit_ratio", in > 0 ? double(cached) / double(in) : 0},
          {"disk_hit_ratio", in > 0 ? double(disk) / double(in) : 0},
          {"failed", failed},
          {"per_turn", per_turn}};
}

// TTFT of an n-token prompt computed from scratch, then again with its prefix cached.
json prefix_ttft(const Target& t, int64_t n, int64_t repeats, uint64_t seed, int64_t vocab, double timeout_s) {
  std::mt19937_64 rng(seed ^ 0x5bd1e995);
  std::vector<double> cold, warm;
  int64_t cached = 0;
  for (int64_t i = 0; i < repeats; ++i) {
    auto prompt = random_tokens(rng, n, vocab);
    Sample a = run_one(t, prompt, 1, timeout_s);
    Sample b = run_one(t, prompt, 1, timeout_s);
    check(a.ok && b.ok, "prefix-ttft request failed: ", a.ok ? b.error : a.error);
    cold.push_back(a.ttft);
    warm.push_back(b.ttft);
    cached = b.cached;
  }
  double c = percentile(cold, 50), w = percentile(warm, 50);
  return {{"prompt_tokens", n},        {"repeats", repeats},  {"cold_ttft_ms", c * 1e3},
          {"cached_ttft_ms", w * 1e3}, {"cached_tokens", cached}, {"cold_over_cached", w > 0 ? c / w : 0}};
}

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> out;
  for (const std::string& item : split_commas(s)) out.push_back(std::atof(item.c_str()));
  return out;
}

void plot(const json& levels, const std::string& png) {
  std::string dat = png + ".dat", gp = png + ".gp";
  {
    std::ofstream d(dat);
    for (const auto& l : levels)
      d << l["output_tokens_per_s"].get<double>() << ' ' << l["ttft"]["p50_ms"].get<double>() << ' '
        << l["tpot"]["p50_ms"].get<double>() << ' ' << l["ttft"]["p99_ms"].get<double>() << ' '
        << l["tpot"]["p99_ms"].get<double>() << '\n';
  }
  {
    std::ofstream g(gp);
    g << "set terminal pngcairo size 900,560 noenhanced\nset output '" << png << "'\n"
      << "set title 'dsinfer serve: latency against output throughput'\nset xlabel 'output tokens/s'\n"
      << "set ylabel 'TPOT (ms)'\nset y2label 'TTFT (ms)'\nset ytics nomirror\nset y2tics\nset grid\nset key left top\n"
      << "plot '" << dat << "' using 1:3 with linespoints title 'TPOT p50', '' using 1:5 with linespoints title 'TPOT p99', "
      << "'' using 1:2 axes x1y2 with linespoints title 'TTFT p50', '' using 1:4 axes x1y2 with linespoints title 'TTFT p99'\n";
  }
  int rc = std::system(("gnuplot '" + gp + "' 2>/dev/null").c_str());
  if (rc != 0) {
    // pngcairo is not in every gnuplot build; the plain png terminal is.
    std::string s = "sed -i 's/pngcairo/png/' '" + gp + "' && gnuplot '" + gp + "'";
    rc = std::system(s.c_str());
  }
  check(rc == 0, "gnuplot failed to write ", png);
}

int run(Args& args) {
  Target t = parse_url(args.get_or("url", "http://127.0.0.1:8000"));
  t.model = args.get_or("model", "");
  auto conc = parse_list(args.get_or("concurrency", "1,8,32"));
  auto rates = parse_list(args.get_or("request-rate", ""));
  int64_t num = args.get_int("num-requests", 0);
  Workload w;
  w.input_len = args.get_int("input-len", 256);
  w.output_len = args.get_int("output-len", 64);
  w.input_spread = args.get_double("input-len-spread", 0);
  w.output_spread = args.get_double("output-len-spread", 0);
  w.shared_prefix = args.get_double("shared-prefix-ratio", 0);
  w.seed = uint64_t(args.get_int("seed", 0));
  w.long_fraction = args.get_double("long-fraction", 0, 0, 1);
  w.long_input_len = args.get_int("long-input-len", w.long_input_len, 1, 1 << 24);
  w.long_input_spread = args.get_double("long-input-len-spread", w.long_input_spread, 0, 0.99);
  int64_t pttft = args.get_int("prefix-ttft", 0);
  int64_t repeats = args.get_int("prefix-ttft-repeats", 3);
  const int64_t conversations = args.get_int("conversations", 0, 0, 1 << 20);
  const int64_t turns = args.get_int("turns", 4, 1, 1000);
  const int64_t turn_len = args.get_int("turn-input-len", 64, 1, 1 << 24);
  bool skip_load = args.flag("no-load");
  double timeout_s = args.get_double("timeout", 600);
  std::string out = args.get_or("out", "");
  std::string png = args.get_or("plot", "");
  args.finish();
  check(w.input_len >= 1 && w.output_len >= 1, "--input-len and --output-len must be positive");
  check(w.input_spread >= 0 && w.input_spread < 1 && w.output_spread >= 0 && w.output_spread < 1,
        "length spreads must be in [0, 1)");
  check(w.shared_prefix >= 0 && w.shared_prefix <= 1, "--shared-prefix-ratio must be in [0, 1]");
  for (double c : conc) check(c >= 1 && c == std::floor(c), "--concurrency takes positive integers");
  for (double r : rates) check(r > 0, "--request-rate takes positive rates");

  {
    httplib::Client cli(t.host, t.port);
    auto res = cli.Get("/v1/models");
    check(res && res->status == 200, "cannot reach ", t.host, ":", t.port, "/v1/models");
    const json first = json::parse(res->body)["data"][0];
    if (t.model.empty()) t.model = first["id"].get<std::string>();
    if (first.contains("vocab_size") && first["vocab_size"].is_number_integer())
      w.vocab = std::max<int64_t>(256, first["vocab_size"].get<int64_t>());
  }
  json report = {{"url", str("http://", t.host, ":", t.port)},
                 {"model", t.model},
                 {"workload",
                  {{"input_len", w.input_len},
                   {"output_len", w.output_len},
                   {"input_len_spread", w.input_spread},
                   {"output_len_spread", w.output_spread},
                   {"shared_prefix_ratio", w.shared_prefix},
                   {"long_fraction", w.long_fraction},
                   {"long_input_len", w.long_input_len},
                   {"long_input_len_spread", w.long_input_spread},
                   {"seed", w.seed}}}};
  json levels = json::array();
  if (!skip_load) {
    uint64_t salt = 1;
    if (!rates.empty()) {
      for (double r : rates) {
        int64_t n = num > 0 ? num : std::max<int64_t>(16, int64_t(r * 30));
        auto jobs = make_jobs(w, n, salt++);
        levels.push_back(run_level(t, jobs, 0, r, w.seed + salt, timeout_s));
        std::fprintf(stderr, "rate %.2f/s: %s\n", r, levels.back().dump().c_str());
      }
    } else {
      for (double c : conc) {
        int64_t n = num > 0 ? num : std::max<int64_t>(8, int64_t(c) * 2);
        levels.push_back(run_level(t, make_jobs(w, n, salt++), int64_t(c), 0, 0, timeout_s));
        std::fprintf(stderr, "concurrency %d: %.1f output tok/s%s\n", int(c), levels.back()["output_tokens_per_s"].get<double>(),
                     levels.back().contains("mtp_acceptance_rate")
                         ? str(", MTP acceptance ", levels.back()["mtp_acceptance_rate"].get<double>(), ", ",
                               levels.back()["tokens_per_step"].get<double>(), " tokens per step").c_str()
                         : "");
      }
    }
    report["levels"] = levels;
  }
  if (conversations > 0)
    report["multi_turn"] = run_conversations(t, w, conversations, turns, turn_len, int64_t(conc.empty() ? 1 : conc[0]),
                                             timeout_s);
  if (pttft > 0) report["prefix_ttft"] = prefix_ttft(t, pttft, repeats, w.seed, w.vocab, timeout_s);
  std::string text = report.dump(2);
  std::printf("%s\n", text.c_str());
  if (!out.empty()) {
    std::ofstream f(out);
    check(bool(f), "cannot write ", out);
    f << text << '\n';
  }
  if (!png.empty() && !levels.empty()) plot(levels, png);
  return 0;
}

const Registration reg({"bench", "load generator for an OpenAI-compatible server (throughput, TTFT, TPOT)",
                        "[--url http://127.0.0.1:8000] [--model NAME] [--concurrency 1,8,32 | --request-rate R1,R2]\n"
                        "       [--num-requests N] [--input-len 256] [--output-len 64] [--input-len-spread F]\n"
                        "       [--output-len-spread F] [--shared-prefix-ratio F] [--seed S] [--prefix-ttft N]\n"
                        "       [--prefix-ttft-repeats 3] [--no-load] [--timeout 600] [--out FILE.json] [--plot FILE.png]\n"
                        "       [--long-fraction F --long-input-len 3072 --long-input-len-spread 0.33]   (a mixed load: short\n"
                        "       and long prompts, reported per class too)\n"
                        "       [--conversations N --turns 4 --turn-input-len 64]   (multi-turn chat: every turn re-sends\n"
                        "       the history; --input-len is the first turn's, the first --concurrency value is used;\n"
                        "       reports the prefix-cache hit ratio, per tier; add --no-load to run only this)",
                        run});

}  // namespace
}  // namespace dsinfer::app
