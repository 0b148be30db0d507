// UcxAgent: two agents in one process for most tests (no shared state between agents); a fork()ed
// child agent, SIGSTOPped then SIGKILLed, for a peer that dies.
#include "transfer/ucx_agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "base/error.h"

namespace dsinfer::transfer {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;

// Collects send completions.
class Dones {
 public:
  UcxAgent::SendDone cb() {
    return [this](bool ok, const std::string& error) {
      std::lock_guard<std::mutex> lock(mu_);
      (ok ? ok_ : failed_)++;
      if (!ok) errors_.push_back(error);
      cv_.notify_all();
    };
  }
  // True once `n` sends have completed either way.
  bool wait(int n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return ok_ + failed_ >= n; });
  }
  int ok() {
    std::lock_guard<std::mutex> lock(mu_);
    return ok_;
  }
  int failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_.empty() ? "" : errors_[0];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int ok_ = 0, failed_ = 0;
  std::vector<std::string> errors_;
};

// Collects received messages.
class Inbox {
 public:
  explicit Inbox(UcxAgent& agent) {
    agent.set_receiver([this](uint64_t tag, Bytes&& m) {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.emplace_back(tag, std::move(m));
      cv_.notify_all();
    });
  }
  bool wait(size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return messages_.size() >= n; });
  }
  std::vector<std::pair<uint64_t, Bytes>> take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(messages_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, Bytes>> messages_;
};

// Distinct content per (seed, offset), so a misplaced or stale byte shows.
Bytes pattern(size_t n, uint64_t seed) {
  Bytes b(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = uint8_t(x);
  }
  return b;
}

Bytes with_u32(uint32_t v, size_t size) {
  Bytes b(std::max<size_t>(size, 4), uint8_t(v * 31));
  std::memcpy(b.data(), &v, 4);
  return b;
}
uint32_t u32_of(const Bytes& b) {
  uint32_t v = 0;
  std::memcpy(&v, b.data(), 4);
  return v;
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10s) {
  auto deadline = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

TEST(UcxAgentTest, HexRoundTripAndBadHex) {
  EXPECT_EQ(UcxAgent::parse_hex("00aFf1"), (Bytes{0x00, 0xaf, 0xf1}));
  UcxAgent a("hex");
  std::string hex = a.address_hex();
  ASSERT_FALSE(a.address().empty());
  EXPECT_EQ(hex.size(), 2 * a.address().size());
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos) << hex;
  EXPECT_EQ(UcxAgent::parse_hex(hex), a.address());
  for (const char* bad : {"", "abc", "0g", "zz", " 0a", "0x00"}) EXPECT_THROW(UcxAgent::parse_hex(bad), Error) << bad;
}

TEST(UcxAgentTest, SmallAndEmptyMessages) {
  UcxAgent a("a"), b("b");
  Inbox inbox(b);
  Dones dones;
  a.send(b.address(), 7, Bytes{1, 2, 3}, dones.cb());
  a.send(b.address(), 8, Bytes{}, dones.cb());
  ASSERT_TRUE(dones.wait(2));
  EXPECT_EQ(dones.ok(), 2) << dones.first_error();
  ASSERT_TRUE(inbox.wait(2));
  auto got = inbox.take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, 7u);
  EXPECT_EQ(got[0].second, (Bytes{1, 2, 3}));
  EXPECT_EQ(got[1].first, 8u);
  EXPECT_TRUE(got[1].second.empty());
}

TEST(UcxAgentTest, LargeMessagesArriveWhole) {
  UcxAgent a("a"), b("b");
  Inbox inbox(b);
  Dones dones;
  const std::vector<size_t> sizes = {1 << 20, (16 << 20) + 3, 64 << 20};
  for (size_t i = 0; i < sizes.size(); ++i) a.send(b.address(), 100 + i, pattern(sizes[i], i), dones.cb());
  ASSERT_TRUE(dones.wait(3, 20s));
  EXPECT_EQ(dones.ok(), 3) << dones.first_error();
  ASSERT_TRUE(inbox.wait(3));
  auto got = inbox.take();
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(got[i].first, 100 + i);
    ASSERT_EQ(got[i].second.size(), sizes[i]);
    EXPECT_TRUE(got[i].second == pattern(sizes[i], i)) << "message " << i << " differs";
  }
}

// A receiver that leaves its buffers in place (the agent reuses them for later messages): every
// message still arrives with exactly its own size and bytes, whatever the sizes before it.
TEST(UcxAgentTest, ReusedReceiveBuffersCarryOnlyTheirMessage) {
  UcxAgent a("a"), b("b");
  std::mutex mu;
  std::vector<std::string> wrong;
  std::atomic<int> got{0};
  auto size_of = [](uint32_t i) -> size_t { return size_t(1 << 20) - (i % 7) * (100 << 10) + i; };
  b.set_receiver([&](uint64_t tag, const Bytes& m) {  // reads, never moves
    if (m != pattern(size_of(uint32_t(tag)), tag)) {
      std::lock_guard<std::mutex> lock(mu);
      wrong.push_back(str("message ", tag, " (", m.size(), " bytes)"));
    }
    ++got;
  });
  const uint32_t n = 60;
  for (uint32_t i = 0; i < n; ++i) a.send(b.address(), i, pattern(size_of(i), i));
  ASSERT_TRUE(eventually([&] { return got.load() == int(n); }));
  EXPECT_TRUE(wrong.empty()) << wrong.size() << " wrong, first " << wrong[0];
}

// Small (eager) and large (rendezvous) messages interleaved, all queued at once: delivered in the
// order sent, each intact.
TEST(UcxAgentTest, ManyMessagesInOrder) {
  UcxAgent a("a"), b("b");
  Inbox inbox(b);
  Dones dones;
  const uint32_t n = 2000;
  auto size_of = [](uint32_t i) -> size_t { return i % 97 == 0 ? (256 << 10) + i : 16 + i % 300; };
  for (uint32_t i = 0; i < n; ++i) a.send(b.address(), 5, with_u32(i, size_of(i)), dones.cb());
  ASSERT_TRUE(dones.wait(n));
  EXPECT_EQ(dones.ok(), int(n)) << dones.first_error();
  ASSERT_TRUE(inbox.wait(n));
  auto got = inbox.take();
  ASSERT_EQ(got.size(), n);
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(u32_of(got[i].second), i) << "message " << i << " out of order";
    ASSERT_EQ(got[i].second, with_u32(i, size_of(i)));
  }
}

// Sends from several threads at once: each thread's messages arrive, in that thread's order.
TEST(UcxAgentTest, ConcurrentSendersKeepTheirOrder) {
  UcxAgent a("a"), b("b");
  Inbox inbox(b);
  Dones dones;
  const int threads = 4, per_thread = 300;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) a.send(b.address(), uint64_t(t), with_u32(uint32_t(i), 64 + i), dones.cb());
    });
  for (auto& t : ts) t.join();
  ASSERT_TRUE(dones.wait(threads * per_thread));
  EXPECT_EQ(dones.ok(), threads * per_thread);
  ASSERT_TRUE(inbox.wait(threads * per_thread));
  std::vector<uint32_t> next(threads, 0);
  for (auto& [tag, m] : inbox.take()) {
    ASSERT_LT(tag, uint64_t(threads));
    EXPECT_EQ(u32_of(m), next[tag]++) << "thread " << tag;
  }
  for (int t = 0; t < threads; ++t) EXPECT_EQ(next[t], uint32_t(per_thread));
}

TEST(UcxAgentTest, EveryTagArrives) {
  UcxAgent a("a"), b("b");
  Inbox inbox(b);
  std::vector<uint64_t> tags = {0, 1, 2, 0xffffffffull, 1ull << 63, ~0ull};
  for (uint64_t t = 3; t < 60; ++t) tags.push_back(t * 0x100000001ull);
  for (uint64_t t : tags) a.send(b.address(), t, pattern(32, t));
  ASSERT_TRUE(inbox.wait(tags.size()));
  auto got = inbox.take();
  ASSERT_EQ(got.size(), tags.size());
  for (size_t i = 0; i < tags.size(); ++i) {
    EXPECT_EQ(got[i].first, tags[i]);
    EXPECT_EQ(got[i].second, pattern(32, tags[i]));
  }
}

TEST(UcxAgentTest, MessagesWithoutReceiverAreDroppedAndCounted) {
  UcxAgent a("a"), b("b");
  Dones dones;
  for (int i = 0; i < 5; ++i) a.send(b.address(), 1, pattern(100 + i, i), dones.cb());
  a.send(b.address(), 1, pattern(1 << 20, 9), dones.cb());
  ASSERT_TRUE(dones.wait(6));
  ASSERT_TRUE(eventually([&] { return b.stats().messages_dropped == 6; })) << b.stats().messages_dropped;
  Inbox inbox(b);
  a.send(b.address(), 2, Bytes{42});
  ASSERT_TRUE(inbox.wait(1));
  auto got = inbox.take();
  ASSERT_EQ(got.size(), 1u);  // none of the dropped ones resurfaces
  EXPECT_EQ(got[0].second, Bytes{42});
  EXPECT_EQ(b.stats().messages_dropped, 6u);
  EXPECT_EQ(b.stats().messages_received, 7u);
}

TEST(UcxAgentTest, StatsCountBothSides) {
  UcxAgent a("a"), b("b");
  Inbox inbox(b);
  Dones dones;
  uint64_t bytes = 0;
  for (int i = 0; i < 10; ++i) {
    size_t n = i == 9 ? (2 << 20) : size_t(10 * i);
    bytes += n;
    a.send(b.address(), 3, Bytes(n, 1), dones.cb());
  }
  a.send({}, 3, Bytes(5, 1), dones.cb());  // an empty address fails
  ASSERT_TRUE(dones.wait(11));
  EXPECT_EQ(dones.failed(), 1);
  ASSERT_TRUE(inbox.wait(10));
  AgentStats sa = a.stats(), sb = b.stats();
  EXPECT_EQ(sa.messages_sent, 10u);
  EXPECT_EQ(sa.bytes_sent, bytes);
  EXPECT_EQ(sa.send_errors, 1u);
  EXPECT_EQ(sa.messages_received, 0u);
  EXPECT_EQ(sb.messages_received, 10u);
  EXPECT_EQ(sb.bytes_received, bytes);
  EXPECT_EQ(sb.messages_sent, 0u);
  EXPECT_EQ(sb.messages_dropped, 0u);
}

// A receiver that answers from the agent thread (send() from a callback), both directions at once.
TEST(UcxAgentTest, PingPongFromCallbacks) {
  UcxAgent a("a"), b("b");
  const Bytes a_addr = a.address();
  b.set_receiver([&](uint64_t tag, Bytes&& m) { b.send(a_addr, tag + 1, std::move(m)); });
  Inbox inbox(a);
  for (uint32_t i = 0; i < 100; ++i) a.send(b.address(), 2 * i, with_u32(i, i % 2 ? 8 : (300 << 10)));
  ASSERT_TRUE(inbox.wait(100));
  auto got = inbox.take();
  for (uint32_t i = 0; i < 100; ++i) {
    EXPECT_EQ(got[i].first, 2 * i + 1);
    EXPECT_EQ(got[i].second, with_u32(i, i % 2 ? 8 : (300 << 10)));
  }
}

// The progress thread sleeps when idle: two connected agents burn (almost) no CPU.
TEST(UcxAgentTest, IdleAgentsDoNotSpin) {
  UcxAgent a("a"), b("b");
  Inbox ia(a), ib(b);
  a.send(b.address(), 1, Bytes(10, 1));
  b.send(a.address(), 1, Bytes(10, 1));
  ASSERT_TRUE(ia.wait(1));
  ASSERT_TRUE(ib.wait(1));
  std::this_thread::sleep_for(50ms);
  double before = cpu_seconds();
  std::this_thread::sleep_for(1s);
  double used = cpu_seconds() - before;
  EXPECT_LT(used, 0.05) << "two idle agents used " << used << " s of CPU in 1 s";
}

// The destructor fails sends still in flight (b's thread is held in its receiver, so a's
// rendezvous sends cannot complete) and sends still queued, each callback exactly once.
TEST(UcxAgentTest, DestructorFailsPendingSends) {
  UcxAgent b("b");
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> got{0};
  b.set_receiver([&](uint64_t tag, Bytes&&) {
    ++got;
    if (tag == 9) released.wait();
  });
  Dones first, pending, small;
  {
    UcxAgent a("a");
    // Connect first, with a rendezvous send so b's half of the connection exists too: UCX 1.13
    // over TCP completes the handshake only when the first large message needs an answer, and
    // aborts (an assertion) if the peer vanishes while b's reply is still queued, as it would be
    // behind a b held in its receiver.
    a.send(b.address(), 1, Bytes(1 << 20, 1), first.cb());
    ASSERT_TRUE(first.wait(1));
    ASSERT_EQ(first.ok(), 1);
    a.send(b.address(), 9, Bytes{1}, first.cb());
    ASSERT_TRUE(eventually([&] { return got.load() == 2; }));
    ASSERT_TRUE(first.wait(2));
    for (int i = 0; i < 4; ++i) a.send(b.address(), 2, Bytes(8 << 20, 2), pending.cb());
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(pending.ok() + pending.failed(), 0) << "sends completed without the receiver running";
    // Small (eager) sends may still complete before the destructor runs: UCX hands them to the
    // socket behind the announced rendezvous ones, and a busy machine gives the agent time to.
    for (int i = 0; i < 4; ++i) a.send(b.address(), 3, Bytes(100, 3), small.cb());
  }
  // The rendezvous sends the receiver never took fail, already when the destructor returned;
  // every small one has been answered either way by then.
  EXPECT_EQ(pending.failed(), 4);
  EXPECT_EQ(pending.ok(), 0);
  EXPECT_NE(pending.first_error(), "");
  EXPECT_EQ(small.ok() + small.failed(), 4);
  release.set_value();
  // b goes on: the messages a had announced but never delivered fail there (or arrive whole).
  EXPECT_TRUE(eventually([&] {
    AgentStats s = b.stats();
    return s.messages_received + s.receive_errors >= 6;
  })) << b.stats().messages_received << " received, " << b.stats().receive_errors << " failed";
  std::printf("b after a vanished: %lu received, %lu failed\n", (unsigned long)b.stats().messages_received, (unsigned long)b.stats().receive_errors);
}

// A peer process killed mid-transfer fails the sends pending to it, and later sends, in bounded
// time. The child is frozen (SIGSTOP) first so the 16 MB rendezvous sends stay pending.
TEST(UcxAgentTest, KilledPeerFailsSends) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();  // before this process has any agent (UCX threads must not be forked)
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(fds[0]);
    try {
      UcxAgent child("child");
      child.set_receiver([](uint64_t, Bytes&&) {});
      std::string line = child.address_hex() + "\n";
      if (write(fds[1], line.data(), line.size()) != ssize_t(line.size())) _exit(1);
      for (;;) pause();
    } catch (...) {
    }
    _exit(1);
  }
  close(fds[1]);
  struct Reap {  // the child never outlives the test, whichever way it ends
    pid_t& pid;
    ~Reap() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reap{pid};
  std::string hex;
  pollfd p{fds[0], POLLIN, 0};
  char buf[4096];
  while (hex.find('\n') == std::string::npos && poll(&p, 1, 10000) == 1) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    hex.append(buf, size_t(n));
  }
  close(fds[0]);
  ASSERT_NE(hex.find('\n'), std::string::npos) << "child sent no address";
  Bytes peer = UcxAgent::parse_hex(hex.substr(0, hex.find('\n')));

  {
    UcxAgent parent("parent");
    Dones first;
    parent.send(peer, 1, pattern(1 << 20, 1), first.cb());  // rendezvous: proves the child answers
    ASSERT_TRUE(first.wait(1));
    ASSERT_EQ(first.ok(), 1) << first.first_error();

    kill(pid, SIGSTOP);
    Dones pending;
    for (int i = 0; i < 3; ++i) parent.send(peer, 2, Bytes(16 << 20, 2), pending.cb());
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(pending.ok() + pending.failed(), 0) << "sends to a stopped peer completed";
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    pid = -1;
    auto killed = Clock::now();
    ASSERT_TRUE(pending.wait(3, 10s)) << "sends to a dead peer still pending after 10 s";
    double pending_s = std::chrono::duration<double>(Clock::now() - killed).count();
    EXPECT_EQ(pending.failed(), 3);
    EXPECT_NE(pending.first_error(), "");

    // After the failure the endpoint is gone: new sends reconnect to a dead address and fail too.
    auto again = Clock::now();
    Dones after;
    parent.send(peer, 3, Bytes(16 << 20, 3), after.cb());
    parent.send(peer, 3, Bytes(64, 3), after.cb());
    ASSERT_TRUE(after.wait(2, 10s)) << "new sends to a dead peer still pending after 10 s";
    double after_s = std::chrono::duration<double>(Clock::now() - again).count();
    EXPECT_EQ(after.failed(), 2) << "new sends to a dead peer reported success";
    std::printf("dead peer: pending sends failed %.2f s after SIGKILL (%s); new sends failed in %.2f s\n", pending_s,
                pending.first_error().c_str(), after_s);
    EXPECT_LT(pending_s, 8.0);
    EXPECT_LT(after_s, 8.0);
    EXPECT_EQ(parent.stats().send_errors, 5u);
  }
}

}  // namespace
}  // namespace dsinfer::transfer
