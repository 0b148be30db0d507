// The API server over a real engine (tiny random DeepSeek-V3) and loopback sockets: work nobody
// waits for is cancelled, and a drain ends on time whatever slow clients do.
#include "serve/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "base/timer.h"
#include "test_helpers.h"

namespace dsinfer::serve {
namespace {

std::string tiny_model() { return dsinfer::testing::tiny_checkpoint("tiny-v3", 5, "serve"); }

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

void send_all(int fd, const std::string& s) { ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size())); }

std::string post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

using dsinfer::testing::eventually;

struct Fixture {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<Server> server;
  std::thread loop;
  int port = 0;

  explicit Fixture(ServerOptions so = {}) {
    std::string dir = tiny_model();
    auto m = model::DeepSeekModel::load(dir, {});
    auto tok = tokenizer::Tokenizer::from_dir(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3");
    engine::EngineOptions eo;
    eo.kv_blocks = 64;
    engine = std::make_unique<engine::Engine>(std::move(m), std::move(tok), eo);
    so.http.port = 0;
    so.model_names = {"tiny"};
    server = std::make_unique<Server>(*engine, so);
    port = server->bind();
    loop = std::thread([this] { server->serve(); });
  }
  ~Fixture() {
    server->stop();
    loop.join();
    engine->shutdown();
  }
};

const std::string kLong = R"({"model":"tiny","prompt":"hello","max_tokens":3000,"ignore_eos":true)";

TEST(Server, ANonStreamingRequestIsCancelledWhenItsClientLeaves) {
  Fixture f;
  int fd = connect_to(f.port);
  send_all(fd, post("/v1/completions", kLong + "}"));
  ASSERT_TRUE(eventually([&] { return f.engine->metrics().running == 1; }, 10));
  ::close(fd);  // nobody will read the answer
  // Within a second (a step boundary or two), not after the 3000 tokens asked for.
  EXPECT_TRUE(eventually([&] { return f.engine->idle(); }, 1)) << "generation went on for a client that left";
  EXPECT_TRUE(eventually([&] { return f.engine->metrics().kv_blocks_used == 0; }, 5));
  EXPECT_EQ(f.engine->metrics().requests_aborted, 1u);
}

TEST(Server, AStreamingRequestIsCancelledWhenItsClientLeaves) {
  Fixture f;
  int fd = connect_to(f.port);
  send_all(fd, post("/v1/completions", kLong + R"(,"stream":true})"));
  ASSERT_TRUE(eventually([&] { return f.engine->metrics().running == 1; }, 10));
  ::close(fd);
  EXPECT_TRUE(eventually([&] { return f.engine->idle(); }, 1));
  EXPECT_EQ(f.engine->metrics().requests_aborted, 1u);
}

TEST(Server, DrainEndsOnTimeWhateverSlowClientsDo) {
  ServerOptions so;
  so.drain_timeout_s = 0.5;
  so.drain_grace_s = 0.5;
  Fixture f(so);
  // One client trickles a request forever, one streams and never reads, one waits on a long
  // non-streamed answer.
  int trickle = connect_to(f.port);
  send_all(trickle, "POST /v1/completions HTTP/1.1\r\nHost: t\r\n");
  int stream = connect_to(f.port);
  send_all(stream, post("/v1/completions", kLong + R"(,"stream":true})"));
  int waiting = connect_to(f.port);
  send_all(waiting, post("/v1/completions", kLong + "}"));
  ASSERT_TRUE(eventually([&] { return f.engine->metrics().running == 2; }, 10));
  double start = now_seconds();
  std::thread drainer([&] { f.server->drain(); });
  f.loop.join();  // serve() returns once the drain has stopped the server
  drainer.join();
  f.loop = std::thread([] {});
  EXPECT_LT(now_seconds() - start, 3.0);
  EXPECT_TRUE(f.engine->idle());
  // The waiting client got an answer (its request ended by the drain), not a hang.
  std::string got(4096, '\0');
  timeval tv{2, 0};
  setsockopt(waiting, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n = ::recv(waiting, got.data(), got.size(), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200");
  EXPECT_NE(got.find("\"finish_reason\":\"abort\""), std::string::npos) << got.substr(0, size_t(n));
  for (int fd : {trickle, stream, waiting}) ::close(fd);
}

}  // namespace
}  // namespace dsinfer::serve
