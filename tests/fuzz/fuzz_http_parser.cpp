// Fuzzes the incremental HTTP/1.1 request parser (serve/http_parser.h) on a byte stream that may
// hold several pipelined requests. Input: 4 bytes of limits (byte 0 == 0: the defaults), 1 byte
// seeding how the stream is cut into reads, then the stream. The stream is parsed twice, whole
// and in reads of random sizes the way a connection feeds it (append, feed, drop what was
// consumed, a fresh parser after each complete request); both must see the same requests and end
// the same way, whatever the cuts. Also: a parser never holds back more than its limits allow,
// errors carry a status from the documented set, and a complete request respects the limits.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "serve/http_parser.h"

using namespace dsinfer::serve::http;

namespace {

// What a connection learns from the stream: each complete request, then how it ended.
struct Outcome {
  std::vector<std::string> requests;  // every field of each request, flattened
  RequestParser::State final_state = RequestParser::State::kRequestLine;
  int error_status = 0;
  bool final_started = false;
  bool operator==(const Outcome&) const = default;
};

std::string flatten(Request& r) {
  std::string s = r.method + '\n' + r.target + '\n' + r.path + '\n' + r.query + '\n' +
                  std::to_string(r.version_minor) + '\n' + (r.keep_alive() ? "keep" : "close") +
                  (r.expects_continue() ? " continue\n" : "\n");
  for (const auto& [k, v] : r.headers) s += k + ": " + v + '\n';
  return s + '\n' + r.body;
}

void check_complete(RequestParser& p, const Limits& limits) {
  Request& r = p.request();
  FUZZ_CHECK(!r.method.empty() && !r.target.empty());
  FUZZ_CHECK(r.target.size() <= limits.max_request_line);
  FUZZ_CHECK(r.headers.size() <= limits.max_header_count);
  FUZZ_CHECK(r.body.size() <= limits.max_body_bytes);
  if (p.body_bytes_expected() > 0) FUZZ_CHECK(r.body.size() == p.body_bytes_expected());
  for (const auto& [k, v] : r.headers) {
    FUZZ_CHECK(!k.empty());
    FUZZ_CHECK(std::none_of(k.begin(), k.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
  }
}

void check_failed(const RequestParser& p) {
  static const int kStatuses[] = {400, 413, 414, 431, 501, 505};
  FUZZ_CHECK(std::find(std::begin(kStatuses), std::end(kStatuses), p.error_status()) != std::end(kStatuses));
  FUZZ_CHECK(!p.error_message().empty());
}

// What a parser that still wants bytes may leave in the caller's buffer: one partial line.
size_t max_held(const Limits& l) { return std::max({l.max_request_line, l.max_header_bytes, size_t(1024)}) + 1; }

Outcome parse_whole(std::string_view stream, const Limits& limits) {
  Outcome o;
  std::string buf(stream);
  while (true) {
    RequestParser p(limits);
    size_t used = p.feed(buf);
    FUZZ_CHECK(used <= buf.size());
    if (p.complete()) {
      check_complete(p, limits);
      o.requests.push_back(flatten(p.request()));
      FUZZ_CHECK(p.feed(std::string_view(buf).substr(used)) == 0);  // a complete parser takes nothing more
      buf.erase(0, used);
      if (!buf.empty()) continue;
      return o;  // the stream ended between requests: an idle connection
    } else if (p.failed()) {
      check_failed(p);
      o.error_status = p.error_status();
    } else {
      FUZZ_CHECK(buf.size() - used <= max_held(limits));
    }
    o.final_state = p.state();
    o.final_started = p.started();
    return o;
  }
}

Outcome parse_in_reads(std::string_view stream, const Limits& limits, uint32_t seed) {
  Outcome o;
  std::string pending;
  RequestParser p(limits);
  uint32_t x = seed * 2654435761u + 1;
  size_t pos = 0;
  while (true) {
    // One read: usually a few bytes, sometimes one, sometimes a lot.
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    size_t n = (x & 3) == 0 ? 1 : (x & 3) == 1 ? 1 + (x >> 8) % 7 : 1 + (x >> 8) % 300;
    n = std::min(n, stream.size() - pos);
    pending.append(stream.data() + pos, n);
    pos += n;
    size_t used = p.feed(pending);
    FUZZ_CHECK(used <= pending.size());
    pending.erase(0, used);
    while (p.complete()) {
      check_complete(p, limits);
      o.requests.push_back(flatten(p.request()));
      p = RequestParser(limits);
      used = p.feed(pending);
      pending.erase(0, used);
    }
    if (p.failed()) {
      check_failed(p);
      o.error_status = p.error_status();
      break;
    }
    FUZZ_CHECK(pending.size() <= max_held(limits));
    if (pos == stream.size()) break;
  }
  o.final_state = p.state();
  o.final_started = p.started() || !pending.empty();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  Limits limits;
  if (data[0] != 0) {
    limits.max_request_line = data[0];
    limits.max_header_bytes = size_t(data[1]) * 4 + 1;
    limits.max_header_count = data[2] % 32;
    limits.max_body_bytes = size_t(data[3]) * 8;
  }
  const std::string_view stream(reinterpret_cast<const char*>(data + 5), size - 5);
  Outcome whole = parse_whole(stream, limits);
  Outcome split = parse_in_reads(stream, limits, data[4]);
  // A line that breaks two rules (too long and not HTTP) may be refused for either, depending on
  // how much of it had arrived: both refusals are right, so the status is not compared.
  if (whole.final_state == RequestParser::State::kError && split.final_state == RequestParser::State::kError)
    split.error_status = whole.error_status;
  if (!(whole == split)) {
    std::fprintf(stderr, "whole: %zu requests, state %d, status %d; in reads: %zu requests, state %d, status %d\n",
                 whole.requests.size(), int(whole.final_state), whole.error_status, split.requests.size(),
                 int(split.final_state), split.error_status);
    FUZZ_CHECK(!"the same stream parsed whole and in reads gave different results");
  }
  return 0;
}
