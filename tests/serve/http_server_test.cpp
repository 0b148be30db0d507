// The event-driven HTTP server over real loopback sockets: slow and idle clients cannot starve
// others, deadlines hold, a client that leaves abandons its response, pipelining answers in
// order, and stop() returns whatever the sockets do.
#include "serve/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "base/timer.h"
#include "test_helpers.h"

namespace dsinfer::serve::http {
namespace {

// A blocking loopback client socket with a receive timeout.
class Client {
 public:
  explicit Client(int port, double timeout_s = 5) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{long(timeout_s), long((timeout_s - long(timeout_s)) * 1e6)};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  bool send(const std::string& s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()); }
  void shut_write() { ::shutdown(fd_, SHUT_WR); }
  // Reads until `marker` has been seen `times` times, EOF or the timeout.
  std::string read_until(const std::string& marker, int times = 1) {
    std::string out;
    char buf[4096];
    while (true) {
      int seen = 0;
      for (size_t p = out.find(marker); p != std::string::npos; p = out.find(marker, p + 1)) ++seen;
      if (seen >= times) break;
      ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
      if (r <= 0) {
        eof_ = r == 0;
        break;
      }
      out.append(buf, size_t(r));
    }
    return out;
  }
  std::string read_all() { return read_until("\x01never\x02"); }
  bool saw_eof() const { return eof_; }

 private:
  int fd_ = -1;
  bool connected_ = false, eof_ = false;
};

const std::string kHealth = "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n";

struct TestServer {
  Server server;
  int port = 0;
  std::thread loop;
  std::atomic<int> abandoned{0};
  std::atomic<int> held{0};

  explicit TestServer(ServerOptions o = {}) : server(withport0(o)) {
    server.route("GET", "/fast", [](Request&, Reply r) {
      Response x;
      x.body = "ok";
      r.send(x);
    });
    server.route("POST", "/echo", [](Request& q, Reply r) {
      Response x;
      x.body = q.body;
      r.send(x);
    }, RunOn::kWorker);
    // Never answers: the client's leaving is the only way out.
    server.route("POST", "/hold", [this](Request&, Reply r) {
      r.on_abandon([this] { ++abandoned; });
      ++held;
    }, RunOn::kWorker);
    // Streams far more than a non-reading client will take.
    server.route("GET", "/flood", [this](Request&, Reply r) {
      r.on_abandon([this] { ++abandoned; });
      Response head;
      head.content_type = "text/plain";
      r.begin_stream(head);
      std::thread([r] {
        std::string chunk(64 << 10, 'x');
        for (int i = 0; i < 4096 && !r.abandoned(); ++i) {
          r.write(chunk);
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        r.end();
      }).detach();
    });
    server.route("GET", "/throw", [](Request&, Reply) -> void { throw std::runtime_error("handler bug"); });
    port = server.bind();
    loop = std::thread([this] { server.run(); });
  }
  ~TestServer() {
    server.stop();
    loop.join();
  }
  static ServerOptions withport0(ServerOptions o) {
    o.port = 0;
    return o;
  }
};

int status_of(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 7, "HTTP/1.") != 0) return -1;
  return std::stoi(response.substr(9, 3));
}

using dsinfer::testing::eventually;

TEST(HttpServer, AnswersAndKeepsTheConnection) {
  TestServer t;
  Client c(t.port);
  ASSERT_TRUE(c.send(kHealth));
  std::string a = c.read_until("ok");
  EXPECT_EQ(status_of(a), 200) << a;
  ASSERT_TRUE(c.send(kHealth));
  EXPECT_EQ(status_of(c.read_until("ok")), 200);
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  TestServer t;
  Client c(t.port);
  std::string body = "payload-1";
  ASSERT_TRUE(c.send(kHealth + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n" + body + kHealth));
  std::string all = c.read_until("HTTP/1.1 200", 3);
  all += c.read_until("ok");
  size_t first_ok = all.find("\r\n\r\nok"), echo = all.find(body), last_ok = all.rfind("\r\n\r\nok");
  ASSERT_NE(echo, std::string::npos) << all;
  EXPECT_LT(first_ok, echo);
  EXPECT_LT(echo, last_ok);
}

TEST(HttpServer, HeadMethodNotAllowedAndUnknownPaths) {
  TestServer t;
  Client head(t.port);
  head.send("HEAD /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  std::string h = head.read_all();
  EXPECT_EQ(status_of(h), 200);
  EXPECT_NE(h.find("Content-Length: 2"), std::string::npos);
  EXPECT_EQ(h.substr(h.find("\r\n\r\n") + 4), "");  // no body
  Client post(t.port);
  post.send("POST /fast HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  std::string p = post.read_all();
  EXPECT_EQ(status_of(p), 405);
  EXPECT_NE(p.find("Allow: GET, HEAD"), std::string::npos) << p;
  Client none(t.port);
  none.send("GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(none.read_all()), 404);
}

TEST(HttpServer, AHandlerThatThrowsGets500AndTheServerGoesOn) {
  TestServer t;
  Client c(t.port);
  c.send("GET /throw HTTP/1.1\r\nHost: t\r\n\r\n");
  std::string a = c.read_until("handler bug");
  EXPECT_EQ(status_of(a), 500) << a;
  c.send(kHealth);
  EXPECT_EQ(status_of(c.read_until("ok")), 200);
}

TEST(HttpServer, ATaskThatThrowsOnTheLoopEndsThereAndTheServerGoesOn) {
  // What a stream's pump or any posted reply might do: the loop must survive it.
  TestServer t;
  std::atomic<bool> ran{false};
  t.server.post([&] {
    ran = true;
    throw std::runtime_error("a formatting bug");
  });
  ASSERT_TRUE(eventually([&] { return ran.load(); }));
  Client c(t.port);
  c.send(kHealth);
  EXPECT_EQ(status_of(c.read_until("ok")), 200);
}

TEST(HttpServer, ExpectContinueGetsA100BeforeTheBody) {
  TestServer t;
  Client c(t.port);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  EXPECT_EQ(status_of(c.read_until("\r\n\r\n")), 100);
  c.send("body");
  EXPECT_EQ(status_of(c.read_until("body")), 200);
}

TEST(HttpServer, SlowClientsDoNotStarveOthers) {
  // 300 connections each holding half a request (more than cpp-httplib's thread pool had):
  // fast clients are still answered at once, one after another.
  TestServer t;
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 300; ++i) {
    slow.push_back(std::make_unique<Client>(t.port));
    ASSERT_TRUE(slow.back()->connected());
    slow.back()->send("POST /echo HTTP/1.1\r\nHost: t\r\nX-Slow: ");
  }
  for (int i = 0; i < 20; ++i) {
    double start = now_seconds();
    Client c(t.port, 2);
    c.send(kHealth);
    EXPECT_EQ(status_of(c.read_until("ok")), 200);
    EXPECT_LT(now_seconds() - start, 1.0);
  }
}

TEST(HttpServer, HeaderAndBodyDeadlinesCannotBeExtendedByTrickling) {
  ServerOptions o;
  o.header_timeout_s = 0.6;
  o.body_timeout_s = 0.6;
  TestServer t(o);
  Client h(t.port);
  double start = now_seconds();
  h.send("GET /fast HTTP/1.1\r\n");
  for (int i = 0; i < 15 && !h.saw_eof(); ++i) {  // a byte every 100 ms: never idle, never done
    h.send("X");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string a = h.read_all();
  EXPECT_EQ(status_of(a), 408) << a;
  EXPECT_LT(now_seconds() - start, 2.5);
  Client b(t.port);
  b.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
  EXPECT_EQ(status_of(b.read_all()), 408);
  EXPECT_EQ(t.server.stats().timed_out_headers, 1u);
  EXPECT_EQ(t.server.stats().timed_out_body, 1u);
}

TEST(HttpServer, IdleConnectionsAreClosed) {
  ServerOptions o;
  o.idle_timeout_s = 0.3;
  TestServer t(o);
  Client c(t.port);
  c.send(kHealth);
  c.read_until("ok");
  double start = now_seconds();
  c.read_all();  // returns at EOF
  EXPECT_TRUE(c.saw_eof());
  EXPECT_LT(now_seconds() - start, 2.0);
}

TEST(HttpServer, AFullConnectionTableEvictsTheOldestIdleConnection) {
  ServerOptions o;
  o.max_connections = 20;
  o.idle_timeout_s = 60;
  TestServer t(o);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(std::make_unique<Client>(t.port));
  ASSERT_TRUE(eventually([&] { return t.server.stats().open == 20; }));
  Client c(t.port);
  c.send(kHealth);
  EXPECT_EQ(status_of(c.read_until("ok")), 200);
  EXPECT_GE(t.server.stats().evicted, 1u);
  idle.front()->read_all();
  EXPECT_TRUE(idle.front()->saw_eof());  // the oldest went
}

TEST(HttpServer, AClientThatLeavesAbandonsItsResponse) {
  TestServer t;
  {
    Client c(t.port);
    c.send("POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
    ASSERT_TRUE(eventually([&] { return t.held == 1; }));
  }
  EXPECT_TRUE(eventually([&] { return t.abandoned == 1; }));
  EXPECT_EQ(t.server.stats().abandoned, 1u);
  EXPECT_EQ(t.server.responses_in_flight(), 0);
}

TEST(HttpServer, AClientThatLeavesWhilePipelinedRequestsWaitIsNoticed) {
  // Its response in progress and 256 KiB of pipelined requests already read, the server stops
  // reading that socket; the client shutting its side must still end the exchange.
  TestServer t;
  Client c(t.port);
  c.send("POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(eventually([&] { return t.held == 1; }));
  std::string pipelined;
  while (pipelined.size() < (300u << 10)) pipelined += kHealth;
  ASSERT_TRUE(c.send(pipelined));
  c.shut_write();
  EXPECT_TRUE(eventually([&] { return t.abandoned == 1; }, 5));
}

TEST(HttpServer, AClientThatDoesNotReadIsDroppedNotBuffered) {
  ServerOptions o;
  o.max_pending_output = 1 << 20;
  TestServer t(o);
  Client c(t.port);
  c.send("GET /flood HTTP/1.1\r\nHost: t\r\n\r\n");  // and never read
  EXPECT_TRUE(eventually([&] { return t.abandoned == 1; }, 20));
  EXPECT_GE(t.server.stats().timed_out_write, 1u);
}

TEST(HttpServer, StopReturnsPromptlyWhateverTheSocketsDo) {
  auto t = std::make_unique<TestServer>();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(std::make_unique<Client>(t->port));
    clients.back()->send(i % 2 ? "GET /fast HTTP/1.1\r\nHo" : "POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  }
  ASSERT_TRUE(eventually([&] { return t->held == 25; }));
  double start = now_seconds();
  t.reset();  // stop() + join
  EXPECT_LT(now_seconds() - start, 1.0);
}

TEST(HttpServer, RepliesAfterTheClientLeftAreHarmless) {
  // A reply that arrives for a connection that has gone (or was never answered) is dropped.
  TestServer t;
  std::atomic<bool> answered{false};
  {
    Client c(t.port);
    c.send("POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    ASSERT_TRUE(eventually([&] { return t.held == 1; }));
  }
  ASSERT_TRUE(eventually([&] { return t.abandoned == 1; }));
  Client c(t.port);
  c.send(kHealth);
  EXPECT_EQ(status_of(c.read_until("ok")), 200);
  (void)answered;
}

}  // namespace
}  // namespace dsinfer::serve::http
