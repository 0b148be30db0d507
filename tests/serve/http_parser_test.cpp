// The HTTP/1.x request parser against hand-written requests: framing, limits, and what a
// hostile client sends (garbage, TLS, smuggling-shaped headers, floods).
#include "serve/http_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace dsinfer::serve::http {
namespace {

struct Parsed {
  RequestParser parser;
  size_t used = 0;
  explicit Parsed(const Limits& l) : parser(l) {}
};

// Feeds `bytes` the way a connection does: in pieces of `step` bytes appended to a buffer,
// keeping what the parser leaves.
std::unique_ptr<Parsed> parse(const std::string& bytes, size_t step = 1 << 20, Limits limits = {}) {
  auto p = std::make_unique<Parsed>(limits);
  std::string buf;
  size_t fed = 0;
  while (fed < bytes.size() && !p->parser.complete() && !p->parser.failed()) {
    size_t n = std::min(step, bytes.size() - fed);
    buf.append(bytes, fed, n);
    fed += n;
    size_t used = p->parser.feed(buf);
    p->used += used;
    buf.erase(0, used);
  }
  return p;
}

const std::string kGet = "GET /v1/models?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v  \r\n\r\n";

// Feeds `req` as a connection would in two reads split at `cut`: what the first read leaves
// unconsumed is fed again with the rest.
void feed_split(RequestParser& p, const std::string& req, size_t cut) {
  std::string buf = req.substr(0, cut);
  buf.erase(0, p.feed(buf));
  buf += req.substr(cut);
  p.feed(buf);
}

TEST(HttpParser, ParsesARequestWholeOrOneByteAtATime) {
  for (size_t step : {size_t(1), size_t(3), size_t(1000)}) {
    auto p = parse(kGet, step);
    ASSERT_TRUE(p->parser.complete()) << step;
    Request& r = p->parser.request();
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.path, "/v1/models");
    EXPECT_EQ(r.query, "x=1");
    EXPECT_EQ(r.version_minor, 1);
    ASSERT_NE(r.header("x-thing"), nullptr);
    EXPECT_EQ(*r.header("x-thing"), "v");
    EXPECT_TRUE(r.keep_alive());
    EXPECT_EQ(p->used, kGet.size());
  }
}

TEST(HttpParser, StopsAtTheEndOfTheFirstPipelinedRequest) {
  std::string two = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + kGet;
  RequestParser p({});
  size_t used = p.feed(two);
  ASSERT_TRUE(p.complete());
  EXPECT_EQ(p.request().body, "abc");
  EXPECT_EQ(two.substr(used), kGet);
}

TEST(HttpParser, DechunksWithExtensionsAndTrailers) {
  std::string req =
      "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\n00A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (size_t step : {size_t(1), size_t(7), size_t(4096)}) {
    auto p = parse(req, step);
    ASSERT_TRUE(p->parser.complete()) << step;
    EXPECT_EQ(p->parser.request().body, "abc0123456789");
    EXPECT_EQ(p->parser.request().header("x-trailer"), nullptr);  // trailers are dropped
  }
}

TEST(HttpParser, AcceptsBareLfLineEnds) {
  auto p = parse("GET / HTTP/1.1\nHost: a\n\n");
  EXPECT_TRUE(p->parser.complete());
}

TEST(HttpParser, KeepAliveFollowsVersionAndConnection) {
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n")->parser.request().keep_alive());
  EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")->parser.request().keep_alive());
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n")->parser.request().keep_alive());
}

TEST(HttpParser, AbsoluteFormKeepsThePath) {
  auto p = parse("GET http://example.com:80/health?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
  ASSERT_TRUE(p->parser.complete());
  EXPECT_EQ(p->parser.request().path, "/health");
}

struct Refusal {
  const char* what;
  std::string bytes;
  int status;
};

constexpr char kNulHeader[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";

TEST(HttpParser, RefusesMalformedAndHostileRequestsWithTheRightStatus) {
  Limits small;
  small.max_request_line = 64;
  small.max_header_bytes = 256;
  small.max_header_count = 8;
  small.max_body_bytes = 100;
  std::string many_headers = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 20; ++i) many_headers += "X-" + std::to_string(i) + ": v\r\n";
  const Refusal cases[] = {
      {"garbage line", "hello\r\n\r\n", 400},
      {"no version", "GET /\r\n\r\n", 400},
      {"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
      {"http/0.9-ish", "GET / HTTP/0.9\r\n\r\n", 505},
      {"no host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"relative target", "GET health HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"long request line", "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
      {"too many headers", many_headers + "\r\n", 431},
      {"huge header", "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(400, 'v') + "\r\n\r\n", 431},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
      {"NUL in value", std::string(kNulHeader, sizeof kNulHeader - 1), 400},
      {"CL too big", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 413},
      {"CL 2^64", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
      {"CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"CL conflict", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"chunked over limit", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" +
                                 std::string(64, 'a') + "\r\n40\r\n" + std::string(64, 'a') + "\r\n0\r\n\r\n", 413},
      {"chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 413},
      {"chunk size not hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"chunk longer than said", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    for (size_t step : {size_t(1), size_t(1 << 20)}) {
      auto p = parse(c.bytes, step, small);
      EXPECT_TRUE(p->parser.failed()) << c.what << " step " << step;
      EXPECT_EQ(p->parser.error_status(), c.status) << c.what << ": " << p->parser.error_message();
      EXPECT_FALSE(p->parser.error_message().empty()) << c.what;
    }
  }
}

TEST(HttpParser, RefusesATlsHelloOrBinaryAtTheFirstBytes) {
  // No newline ever comes: the parser must not wait for one.
  for (std::string start : {std::string("\x16\x03\x01\x02\x00", 5), std::string("\x00\x00", 2), std::string("GE\x01", 3)}) {
    RequestParser p({});
    p.feed(start);
    EXPECT_TRUE(p.failed()) << int(static_cast<unsigned char>(start[0]));
    EXPECT_EQ(p.error_status(), 400);
  }
}

TEST(HttpParser, PartialLinesAreBoundedBeforeTheirNewline) {
  Limits l;
  l.max_request_line = 100;
  l.max_header_bytes = 1000;
  RequestParser a(l);
  a.feed("GET /" + std::string(200, 'a'));  // no newline yet
  EXPECT_EQ(a.error_status(), 414);
  RequestParser b(l);
  std::string head = "GET / HTTP/1.1\r\nX: " + std::string(2000, 'v');
  size_t used = b.feed(head);
  EXPECT_EQ(b.error_status(), 431);
  EXPECT_LE(used, head.size());
}

TEST(HttpParser, ALineAtTheLimitPassesWhereverAReadSplitsItsCrlf) {
  // Found by fuzz_http_parser: a read ending between CR and LF counted the CR against the limit.
  Limits l;
  const std::string line = "GET /" + std::string(50, 'a') + " HTTP/1.1";
  l.max_request_line = line.size();
  const std::string req = line + "\r\nHost: h\r\n\r\n";
  for (size_t cut = 1; cut < req.size(); ++cut) {
    RequestParser p(l);
    feed_split(p, req, cut);
    EXPECT_TRUE(p.complete()) << "split at " << cut << ": " << p.error_message();
  }
  // A chunk-size line of 1024 bytes, the limit.
  std::string chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;" + std::string(1022, 'x') +
                        "\r\nabc\r\n0\r\n\r\n";
  const size_t cr = chunked.find("\r\nabc");
  RequestParser p({});
  feed_split(p, chunked, cr + 1);  // the first read ends on the chunk-size line's CR
  EXPECT_TRUE(p.complete()) << p.error_message();
}

TEST(HttpParser, HeadersThatFillTheirBudgetExactlyPassWhereverAReadSplitsThem) {
  // Found by fuzz_http_parser: headers (or trailers) that used the whole max_header_bytes, then a
  // read ending on the CR of the empty line that ends them: the lone CR was counted as one more
  // header byte and the request refused with 431, though the whole stream is a valid request.
  // Every split point of both, with the budget exactly what the lines count (each line + 2).
  const std::string headers = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n";
  const std::string trailer = "X-Trailer: " + std::string(20, 'w');
  const std::string req = headers + "\r\n5\r\nhello\r\n0\r\n" + trailer + "\r\n\r\n";
  Limits l;
  l.max_header_bytes = (7 + 2) + (26 + 2) + trailer.size() + 2;
  for (size_t cut = 1; cut < req.size(); ++cut) {
    RequestParser p(l);
    feed_split(p, req, cut);
    EXPECT_TRUE(p.complete()) << "split at " << cut << ": " << p.error_message();
    EXPECT_EQ(p.request().body, "hello");
  }
  // One byte more in the trailer is over the budget, split or not.
  const std::string over = headers + "\r\n0\r\n" + trailer + "w\r\n\r\n";
  for (size_t cut : {over.size() / 2, over.size() - 2, over.size() - 1}) {
    RequestParser p(l);
    feed_split(p, over, cut);
    EXPECT_EQ(p.error_status(), 431) << "split at " << cut;
  }
}

TEST(HttpParser, HeadersCompleteBeforeTheBodyArrives) {
  RequestParser p({});
  p.feed("POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_TRUE(p.headers_complete());
  EXPECT_FALSE(p.complete());
  EXPECT_TRUE(p.request().expects_continue());
  EXPECT_EQ(p.body_bytes_expected(), 5u);
  p.feed("hello");
  EXPECT_TRUE(p.complete());
}

TEST(HttpMessage, HeaderTokensAreCaseInsensitiveAndCommaSeparated) {
  EXPECT_TRUE(header_has_token("keep-alive, Close", "close"));
  EXPECT_FALSE(header_has_token("closed", "close"));
  EXPECT_FALSE(header_has_token("", "close"));
}

}  // namespace
}  // namespace dsinfer::serve::http
