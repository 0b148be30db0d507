// The API server over a real engine (tiny random DeepSeek-V3) and loopback sockets: work nobody
// waits for is cancelled, a drain ends on time whatever slow clients do, and a request whose
// model output is broken or cannot be printed ends alone while the server keeps serving.
#include "serve/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "base/timer.h"
#include "edited_checkpoint.h"
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

// One request on its own connection (Connection: close), and the whole answer.
std::string round_trip(int port, const std::string& request) {
  int fd = connect_to(port);
  send_all(fd, request);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, size_t(n));
  ::close(fd);
  return got;
}

std::string post_closing(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

using dsinfer::testing::eventually;

const std::string kTokenizerDir = std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3";

struct Fixture {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<Server> server;
  std::thread loop;
  int port = 0;

  explicit Fixture(ServerOptions so = {}, const std::string& model_dir = tiny_model(),
                   const model::ModelOptions& mo = {}, const std::string& tokenizer_dir = kTokenizerDir) {
    auto m = model::DeepSeekModel::load(model_dir, mo);
    auto tok = tokenizer::Tokenizer::from_dir(tokenizer_dir);
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

TEST(Server, GetOnAPostRouteIs405NamingTheAllowedMethod) {
  Fixture f;
  const std::string got =
      round_trip(f.port, "GET /v1/chat/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 405") << got;
  EXPECT_NE(got.find("Allow: POST"), std::string::npos) << got;
}

// The prompt as token ids, with the options in `extra` (",\"stream\":true" and the like).
std::string ids_request(const std::vector<int32_t>& ids, const std::string& extra) {
  std::string prompt;
  for (int32_t id : ids) {
    if (!prompt.empty()) prompt += ',';
    prompt += std::to_string(id);
  }
  return post_closing("/v1/completions", R"({"model":"tiny","temperature":0,"prompt":[)" + prompt + "]" + extra + "}");
}

TEST(Server, NonFiniteLogitsAre500ForThatRequestAndTheServerKeepsServing) {
  const int32_t kPoison = 4242;
  model::ModelOptions mo;
  mo.check_weights = false;  // as a model whose activations overflow would behave
  Fixture f({}, dsinfer::testing::model_with_nan_token(tiny_model(), kPoison), mo);
  std::vector<int32_t> poisoned = dsinfer::testing::prompt_of(12, 3);
  poisoned[5] = kPoison;
  for (const char* sampling : {R"(,"max_tokens":4)", R"(,"max_tokens":4,"temperature":0.8,"top_k":5,"top_p":0.9)"}) {
    std::string got = round_trip(f.port, ids_request(poisoned, sampling));
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 500") << got;
    EXPECT_NE(got.find("non-finite logit"), std::string::npos) << got;
    got = round_trip(f.port, ids_request(poisoned, std::string(sampling) + R"(,"stream":true)"));
    EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200") << got;  // the stream had begun: an error event
    EXPECT_NE(got.find("non-finite logit"), std::string::npos) << got;
    EXPECT_NE(got.find("data: [DONE]"), std::string::npos) << got;
  }
  const std::string healthy = round_trip(f.port, ids_request(dsinfer::testing::prompt_of(12, 4), R"(,"max_tokens":4)"));
  EXPECT_EQ(healthy.substr(0, 12), "HTTP/1.1 200") << healthy;
  EXPECT_NE(healthy.find("\"finish_reason\":\"length\""), std::string::npos) << healthy;
  EXPECT_TRUE(eventually([&] { return f.engine->idle() && f.engine->metrics().kv_blocks_used == 0; }, 5));
}

TEST(Server, AReplyThatCannotBeFormattedEndsOnlyItsRequest) {
  // A tokenizer with a gap (its last vocabulary token moves from id 127999 to 128001, so ids
  // 127999 and 128000 have no text), and a model whose head row for the gap id 128000 copies the
  // row of the token it greedily picks first: the two tie, so the printable token is sampled (the
  // lowest id wins a tie) and the gap id stands in its top logprobs, which cannot be printed.
  namespace fs = std::filesystem;
  const int32_t kGap = 128000;
  const std::string tok_dir = dsinfer::testing::scratch_path("gap-tokenizer");
  fs::create_directories(tok_dir);
  fs::copy_file(kTokenizerDir + "/tokenizer_config.json", tok_dir + "/tokenizer_config.json");
  auto tj = nlohmann::json::parse(std::ifstream(kTokenizerDir + "/tokenizer.json"));
  bool moved = false;
  for (auto& [token, id] : tj["model"]["vocab"].items())
    if (id == kGap - 1) {
      id = kGap + 1;
      moved = true;
    }
  ASSERT_TRUE(moved);
  std::ofstream(tok_dir + "/tokenizer.json") << tj.dump();
  EXPECT_THROW(tokenizer::Tokenizer::from_dir(tok_dir).decode({kGap}), Error);

  const std::vector<int32_t> prompt = dsinfer::testing::prompt_of(12, 7);
  const std::string logprobs = R"(,"max_tokens":1,"logprobs":2)";
  int32_t first = -1;
  {
    Fixture plain;
    const std::string got = round_trip(plain.port, ids_request(prompt, R"(,"max_tokens":1,"return_token_ids":true)"));
    const auto body = nlohmann::json::parse(got.substr(got.find("\r\n\r\n") + 4));
    first = body["choices"][0]["token_ids"][0].get<int32_t>();
  }
  ASSERT_LT(first, kGap - 1);
  const std::string dir = dsinfer::testing::copy_checkpoint(tiny_model(), "gap-head");
  const std::vector<uint16_t> row = dsinfer::testing::bf16_row(dir, "lm_head.weight", first);
  dsinfer::testing::edit_bf16_row(dir, "lm_head.weight", kGap, [&](std::vector<uint16_t>& v) { v = row; });
  Fixture f({}, dir, {}, tok_dir);

  std::string got = round_trip(f.port, ids_request(prompt, logprobs));
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 500") << got;
  EXPECT_NE(got.find("cannot format the reply"), std::string::npos) << got;
  got = round_trip(f.port, ids_request(prompt, logprobs + R"(,"stream":true)"));
  EXPECT_NE(got.find("cannot format the reply"), std::string::npos) << got;
  EXPECT_NE(got.find("data: [DONE]"), std::string::npos) << got;
  // The same prompt without logprobs prints (the sampled token has text); the server serves on.
  got = round_trip(f.port, ids_request(prompt, R"(,"max_tokens":1,"return_token_ids":true)"));
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 200") << got;
  EXPECT_NE(got.find("\"token_ids\":[" + std::to_string(first) + "]"), std::string::npos) << got;
  EXPECT_TRUE(eventually([&] { return f.engine->idle() && f.engine->metrics().kv_blocks_used == 0; }, 5));
}

}  // namespace
}  // namespace dsinfer::serve
