#include "serve/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>

#include "base/error.h"
#include "base/log.h"
#include "base/timer.h"
#include "serve/content_coding.h"
#include "serve/http_parser.h"

namespace dsinfer::serve::http {

namespace {

constexpr uint64_t kListenId = 0, kMailboxId = 1;
constexpr size_t kReadChunk = 64 << 10;
// While a response is in progress, pipelined bytes wait in the input buffer; past this much the
// server stops reading that socket until the response is done (it still sees the client leave).
constexpr size_t kMaxPipelined = 256 << 10;
constexpr double kTickS = 0.1;  // how often deadlines are checked
// Bytes read and dropped after a final response (the rest of a refused body) before the server
// stops being polite and closes: at least this, and twice the body limit, so a client whose body
// is a little over the limit reads its 413 instead of a reset (closing with its bytes unread
// resets the connection, and the client may lose the response).
constexpr size_t kMinLingerBytes = 4 << 20;
constexpr int kReadsPerEvent = 16;

const char* reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

std::string http_date() {
  char buf[64];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string hex(size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%zx", n);
  return buf;
}

}  // namespace

// Work posted to the loop from other threads, and the eventfd that wakes it.
struct Server::Mailbox {
  std::mutex mu;
  std::vector<std::function<void()>> tasks;
  int efd = -1;
  bool closed = false;

  void post(std::function<void()> fn) {
    std::lock_guard lock(mu);  // held across the write: close() must not recycle efd under it
    if (closed) return;
    tasks.push_back(std::move(fn));
    uint64_t one = 1;
    ssize_t rc = ::write(efd, &one, sizeof one);
    (void)rc;  // EAGAIN: the counter is already non-zero, the loop will wake anyway
  }
  std::vector<std::function<void()>> take() {
    std::lock_guard lock(mu);
    return std::exchange(tasks, {});
  }
};

struct Server::Workers {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;
  std::vector<std::thread> threads;
  bool stop = false;

  explicit Workers(int n) {
    for (int i = 0; i < n; ++i)
      threads.emplace_back([this] {
        while (true) {
          std::function<void()> job;
          {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return stop || !jobs.empty(); });
            if (jobs.empty()) return;
            job = std::move(jobs.front());
            jobs.pop_front();
          }
          job();
        }
      });
  }
  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu);
      jobs.push_back(std::move(job));
    }
    cv.notify_one();
  }
  ~Workers() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();
  }
};

struct Server::Counters {
  std::atomic<uint64_t> accepted{0}, open{0}, closed_idle{0}, closed_peer{0}, timed_out_headers{0},
      timed_out_body{0}, timed_out_write{0}, evicted{0}, refused_full{0}, abandoned{0}, bad_requests{0};
};

struct Server::Route {
  std::string method;
  Handler handler;
  RunOn where;
};

// One request's answer, shared by the connection (on the loop) and whoever answers it.
class Exchange {
 public:
  Exchange(Server* server, std::shared_ptr<Server::Mailbox> mailbox, uint64_t conn_id)
      : server(server), mailbox(std::move(mailbox)), conn_id(conn_id) {}

  static void post(const std::shared_ptr<Exchange>& x, int op, Response r) {
    Server* s = x->server;
    x->mailbox->post([s, x, op, r = std::move(r)]() mutable { s->deliver(x, op, std::move(r)); });
  }
  void on_abandon(std::function<void()> fn) {
    std::unique_lock lock(mu_);
    if (abandoned_) {
      lock.unlock();
      fn();
      return;
    }
    if (!completed_) hook_ = std::move(fn);
  }
  void abandon() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      if (abandoned_ || completed_) return;
      abandoned_ = true;
      fn = std::move(hook_);
    }
    if (fn) fn();
  }
  void complete() {
    std::lock_guard lock(mu_);
    completed_ = true;
    hook_ = nullptr;
  }
  bool abandoned() const {
    std::lock_guard lock(mu_);
    return abandoned_;
  }

  Server* const server;
  const std::shared_ptr<Server::Mailbox> mailbox;
  const uint64_t conn_id;

 private:
  mutable std::mutex mu_;
  bool abandoned_ = false, completed_ = false;
  std::function<void()> hook_;
};

namespace {
enum Op { kSend, kBegin, kWrite, kEnd };
}

void Reply::send(Response r) const { Exchange::post(x_, kSend, std::move(r)); }
void Reply::begin_stream(Response head) const { Exchange::post(x_, kBegin, std::move(head)); }
void Reply::write(std::string data) const {
  Response r;
  r.body = std::move(data);
  Exchange::post(x_, kWrite, std::move(r));
}
void Reply::end() const { Exchange::post(x_, kEnd, {}); }
void Reply::on_abandon(std::function<void()> fn) const { x_->on_abandon(std::move(fn)); }
bool Reply::abandoned() const { return x_->abandoned(); }

struct Server::Conn {
  enum class Phase { kReading, kHandling, kClosing, kLingering };
  int fd = -1;
  uint64_t id = 0;
  Phase phase = Phase::kReading;
  std::string in;
  std::unique_ptr<RequestParser> parser;
  std::string out;
  size_t out_off = 0;
  uint32_t events = 0;
  std::shared_ptr<Exchange> exchange;  // while a response is in progress
  std::string path;                    // of the request being answered (for the observer)
  bool keep_alive = true, head_only = false, http10 = false, streaming = false, sent_continue = false;
  bool reading_paused = false;
  bool processing_input = false;
  bool peer_eof = false;  // the client shut its side after sending a request
  size_t lingered = 0;    // bytes dropped while lingering  // process_input is on the stack (a finished response must not re-enter it)
  double idle_since = 0, request_started = 0, headers_done_at = 0, linger_until = 0;
  double last_write_progress = 0;

  bool output_pending() const { return out_off < out.size(); }
};

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      mailbox_(std::make_shared<Mailbox>()),
      counters_(std::make_unique<Counters>()) {
  error_response_ = [](int status, const std::string& message) {
    Response r;
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    r.body = message + "\n";
    return r;
  };
}

Server::~Server() {
  workers_.reset();  // join before the loop's state goes
  for (auto& [id, c] : conns_) ::close(c->fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  std::lock_guard lock(mailbox_->mu);
  mailbox_->closed = true;
  mailbox_->tasks.clear();
  if (mailbox_->efd >= 0) ::close(mailbox_->efd);
  mailbox_->efd = -1;
}

void Server::route(const std::string& method, const std::string& path, Handler handler, RunOn where) {
  routes_[path].push_back({method, std::move(handler), where});
}

void Server::set_error_response(std::function<Response(int, const std::string&)> fn) { error_response_ = std::move(fn); }
void Server::set_response_observer(std::function<void(const std::string&, int)> fn) { observer_ = std::move(fn); }

ConnectionStats Server::stats() const {
  const Counters& k = *counters_;
  ConnectionStats s;
  s.accepted = k.accepted;
  s.open = k.open;
  s.closed_idle = k.closed_idle;
  s.closed_peer = k.closed_peer;
  s.timed_out_headers = k.timed_out_headers;
  s.timed_out_body = k.timed_out_body;
  s.timed_out_write = k.timed_out_write;
  s.evicted = k.evicted;
  s.refused_full = k.refused_full;
  s.abandoned = k.abandoned;
  s.bad_requests = k.bad_requests;
  return s;
}

int Server::bind() {
  // Every connection is a descriptor: lift the soft limit (often 1024) toward the hard one so
  // the connection table, not EMFILE, is what bounds the clients.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    rlim_t want = std::min<rlim_t>(nofile.rlim_max, rlim_t(options_.max_connections) + 256);
    if (nofile.rlim_cur < want) {
      nofile.rlim_cur = want;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
  }
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  std::string port = std::to_string(options_.port);
  int rc = getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &res);
  check(rc == 0 && res, "cannot resolve --host ", options_.host, ": ", rc ? gai_strerror(rc) : "no address");
  std::string why;
  for (addrinfo* a = res; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) {
      listen_fd_ = fd;
      break;
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(res);
  check(listen_fd_ >= 0, "cannot listen on ", options_.host, ":", options_.port, " (", why,
        "; in use, or not an address of this machine)");
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  int bound = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  mailbox_->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  check(epoll_fd_ >= 0 && mailbox_->efd >= 0, "cannot create the event loop: ", std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kMailboxId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, mailbox_->efd, &ev);
  workers_ = std::make_unique<Workers>(std::max(1, options_.worker_threads));
  return bound;
}

void Server::post(std::function<void()> fn) { mailbox_->post(std::move(fn)); }

std::function<void(std::function<void()>)> Server::poster() const {
  return [mb = mailbox_](std::function<void()> fn) { mb->post(std::move(fn)); };
}

void Server::stop() {
  stopping_ = true;
  post([] {});  // wakes the loop
}

void Server::begin_drain() {
  post([this] {
    draining_ = true;
    std::vector<uint64_t> idle;
    for (auto& [id, c] : conns_) {
      if (c->phase != Conn::Phase::kReading || !c->in.empty() || (c->parser && c->parser->started())) continue;
      // Bytes the loop has not read yet are a request on its way (a client that connected just
      // before the drain): it is answered, with 503 for new work, rather than reset.
      char byte;
      if (recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0) continue;
      idle.push_back(id);
    }
    for (uint64_t id : idle)
      if (Conn* c = find(id)) {
        ++counters_->closed_idle;
        close_conn(*c);
      }
  });
}

Server::Conn* Server::find(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void Server::set_events(Conn& c, uint32_t events) {
  if (events == c.events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.events = events;
}

void Server::run() {
  check(epoll_fd_ >= 0, "http::Server::run() before bind()");
  std::vector<epoll_event> events(256);
  double next_tick = now_seconds() + kTickS;
  while (!stopping_) {
    int timeout_ms = std::max(1, int((next_tick - now_seconds()) * 1000));
    int n = epoll_wait(epoll_fd_, events.data(), int(events.size()), timeout_ms);
    for (int i = 0; i < n && !stopping_; ++i) {
      uint64_t id = events[size_t(i)].data.u64;
      if (id == kListenId) {
        accept_all();
      } else if (id == kMailboxId) {
        uint64_t v;
        while (::read(mailbox_->efd, &v, sizeof v) > 0) {
        }
      } else if (Conn* c = find(id)) {
        on_event(*c, events[size_t(i)].events);
      }
    }
    // Tasks may post more tasks (a stream's pump writes to its reply): run until quiet.
    for (int rounds = 0; rounds < 16 && !stopping_; ++rounds) {
      auto tasks = mailbox_->take();
      if (tasks.empty()) break;
      for (auto& t : tasks) {
        // A task is one request's business (a reply, a stream's pump): whatever it throws ends
        // there, never the loop every other connection depends on.
        try {
          t();
        } catch (const std::exception& e) {
          log_warn("a task on the event loop failed: ", e.what());
        } catch (...) {
          log_warn("a task on the event loop failed");
        }
      }
    }
    double now = now_seconds();
    if (now >= next_tick) {
      check_deadlines(now);
      next_tick = now + kTickS;
    }
  }
  {
    std::lock_guard lock(mailbox_->mu);
    mailbox_->closed = true;
    mailbox_->tasks.clear();
  }
  std::vector<uint64_t> ids;
  for (auto& [id, c] : conns_) ids.push_back(id);
  for (uint64_t id : ids)
    if (Conn* c = find(id)) close_conn(*c);
  workers_.reset();
}

void Server::accept_all() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) log_warn("accept: out of file descriptors (", std::strerror(errno), ")");
      return;
    }
    ++counters_->accepted;
    if (conns_.size() >= options_.max_connections) {
      // Full: the connection that has been idle or half-sent the longest makes room. A flood of
      // slow sockets then churns among itself while active requests keep their connections.
      Conn* victim = nullptr;
      for (auto& [id, c] : conns_) {
        if (c->phase != Conn::Phase::kReading) continue;
        double since = c->parser && c->parser->started() ? c->request_started : c->idle_since;
        double vs = !victim ? 0 : victim->parser && victim->parser->started() ? victim->request_started : victim->idle_since;
        if (!victim || since < vs) victim = c.get();
      }
      if (!victim) {
        ++counters_->refused_full;
        static const char kFull[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";
        ssize_t rc = ::send(fd, kFull, sizeof kFull - 1, MSG_NOSIGNAL);
        (void)rc;
        ::close(fd);
        continue;
      }
      ++counters_->evicted;
      close_conn(*victim);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // stream chunks go out at once
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->id = next_conn_id_++;
    c->idle_since = now_seconds();
    c->events = EPOLLIN | EPOLLRDHUP;
    epoll_event ev{};
    ev.events = c->events;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    ++counters_->open;
    conns_.emplace(c->id, std::move(c));
  }
}

void Server::on_event(Conn& c, uint32_t events) {
  const uint64_t id = c.id;
  if (events & (EPOLLERR | EPOLLHUP)) {
    if (c.exchange) ++counters_->abandoned;
    ++counters_->closed_peer;
    close_conn(c);
    return;
  }
  if ((events & EPOLLRDHUP) && c.reading_paused) {
    // Not reading (its pipelined requests wait), and the client has shut its side: it is gone,
    // and epoll would report it again on every turn until we act.
    if (c.exchange) ++counters_->abandoned;
    ++counters_->closed_peer;
    close_conn(c);
    return;
  }
  if (events & EPOLLOUT) flush(c);
  Conn* alive = find(id);
  if (alive && (events & (EPOLLIN | EPOLLRDHUP))) read_from(*alive);
}

void Server::read_from(Conn& conn) {
  const uint64_t id = conn.id;
  char buf[kReadChunk];
  // At most kReadsPerEvent reads per wake-up: epoll is level-triggered, so the rest waits for
  // the next turn and one fast sender cannot hold the loop.
  for (int reads = 0; reads < kReadsPerEvent; ++reads) {
    Conn* cp = find(id);
    if (!cp) return;
    Conn& c = *cp;
    if (c.phase == Conn::Phase::kHandling && c.in.size() >= kMaxPipelined) {
      // Enough waiting already; keep watching for the client leaving (RDHUP), not for more data.
      c.reading_paused = true;
      set_events(c, (c.events & ~uint32_t(EPOLLIN)) | EPOLLRDHUP);
      return;
    }
    ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
    if (r > 0) {
      if (c.phase == Conn::Phase::kLingering || c.phase == Conn::Phase::kClosing) {
        if ((c.lingered += size_t(r)) > std::max(kMinLingerBytes, 2 * options_.limits.max_body_bytes))
          close_conn(c);  // still sending a refused body
        continue;
      }
      c.in.append(buf, size_t(r));
      // Parse as it arrives: the parser's limits bound what is kept, so a client sending faster
      // than the loop drains cannot grow the buffer past one read.
      if (c.phase == Conn::Phase::kReading) process_input(c);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r == 0 && c.phase == Conn::Phase::kReading && !c.in.empty()) {
      // The client sent a request and shut its side (nc, scripts): answer it, then close.
      // Only the bytes already here count; with the read side at EOF, stop watching it.
      c.peer_eof = true;
      set_events(c, c.events & ~uint32_t(EPOLLIN | EPOLLRDHUP));
      process_input(c);
      Conn* alive = find(id);
      if (alive && alive->phase == Conn::Phase::kReading) close_conn(*alive);  // incomplete request
      return;
    }
    // EOF or a reset while a response is in progress: the client is gone. (A client that shuts
    // its side after the request was dispatched is treated as gone too: TCP cannot tell that
    // from a close, and generating for nobody is the worse mistake.)
    if (c.exchange) ++counters_->abandoned;
    ++counters_->closed_peer;
    close_conn(c);
    return;
  }
}

void Server::process_input(Conn& conn) {
  if (conn.processing_input) return;  // the caller's loop picks up where this would
  const uint64_t id = conn.id;
  conn.processing_input = true;
  Conn* c = &conn;
  while (c && c->phase == Conn::Phase::kReading && !stopping_) {
    if (!c->parser) {
      if (c->in.empty()) break;
      c->parser = std::make_unique<RequestParser>(options_.limits);
      c->request_started = now_seconds();
      c->sent_continue = false;
    }
    bool had_headers = c->parser->headers_complete();
    size_t used = c->parser->feed(c->in);
    c->in.erase(0, used);
    if (c->parser->failed()) {
      ++counters_->bad_requests;
      c->path = "";
      answer_error(*c, c->parser->error_status(), c->parser->error_message(), true);
      c = find(id);
      break;
    }
    if (!had_headers && c->parser->headers_complete()) c->headers_done_at = now_seconds();
    if (!c->parser->complete()) {
      Request& r = c->parser->request();
      if (c->parser->headers_complete() && !c->sent_continue && r.version_minor >= 1 && r.expects_continue()) {
        c->out += "HTTP/1.1 100 Continue\r\n\r\n";
        c->sent_continue = true;
        flush(*c);
        c = find(id);
      }
      break;
    }
    dispatch(*c);
    c = find(id);  // an error answered at once may have closed it
  }
  if (c) c->processing_input = false;
}

void Server::dispatch(Conn& c) {
  Request req = std::move(c.parser->request());
  c.parser.reset();
  c.phase = Conn::Phase::kHandling;
  ++in_flight_;
  c.keep_alive = req.keep_alive() && !draining_ && !c.peer_eof;
  c.http10 = req.version_minor == 0;
  c.head_only = req.method == "HEAD";
  c.streaming = false;
  c.path = req.path;
  auto x = std::make_shared<Exchange>(this, mailbox_, c.id);
  c.exchange = x;

  auto it = routes_.find(req.path);
  if (it == routes_.end()) return answer_error(c, 404, str("no route for ", req.method, " ", req.path), false);
  const Route* route = nullptr;
  std::string allow;
  for (const Route& r : it->second) {
    if (r.method == req.method || (req.method == "HEAD" && r.method == "GET")) route = &r;
    allow += (allow.empty() ? "" : ", ") + r.method + (r.method == "GET" ? ", HEAD" : "");
  }
  if (!route) {
    Response r = error_response_(405, str(req.method, " is not allowed on ", req.path, " (allowed: ", allow, ")"));
    r.headers.emplace_back("Allow", allow);
    Reply(x).send(std::move(r));
    return;
  }
  // Decoding and the handler run together, where the route says: inflating a large body on the
  // loop would stall every other connection.
  auto job = [this, x, handler = route->handler, req = std::move(req)]() mutable {
    Reply reply(x);
    DecodeResult d = decode_content(req, options_.limits.max_body_bytes);
    if (d.status != 0) {
      ++counters_->bad_requests;
      Response r = error_response_(d.status, d.message);
      if (d.status == 415) r.headers.emplace_back("Accept-Encoding", "gzip, deflate, identity");
      reply.send(std::move(r));
      return;
    }
    try {
      handler(req, reply);
    } catch (const std::exception& e) {
      reply.send(error_response_(500, e.what()));
    } catch (...) {
      reply.send(error_response_(500, "internal error"));
    }
  };
  if (route->where == RunOn::kWorker)
    workers_->submit(std::move(job));
  else
    job();
}

void Server::answer_error(Conn& c, int status, const std::string& message, bool close) {
  if (c.phase == Conn::Phase::kReading) {
    c.phase = Conn::Phase::kHandling;
    ++in_flight_;
    c.exchange = std::make_shared<Exchange>(this, mailbox_, c.id);
    c.head_only = false;
    c.http10 = false;
    c.streaming = false;
  }
  if (close) c.keep_alive = false;
  // Delivered directly: the loop owns the connection, and framing may be lost (no pipelining
  // after a parse error).
  deliver(c.exchange, kSend, error_response_(status, message));
}

void Server::deliver(const std::shared_ptr<Exchange>& x, int op, Response r) {
  Conn* cp = find(x->conn_id);
  if (!cp || cp->exchange != x) return;  // the client left, or this answer came twice
  Conn& c = *cp;
  if (op == kSend || op == kBegin) {
    if (c.streaming) return;
    if (r.content_type.empty()) r.content_type = "application/json";
    if (observer_) observer_(c.path, r.status);
    bool stream = op == kBegin;
    if (stream && c.http10) c.keep_alive = false;  // no chunked encoding in 1.0: close ends the body
    std::string head = str("HTTP/1.", c.http10 ? 0 : 1, " ", r.status, " ", reason(r.status), "\r\n");
    head += "Date: " + http_date() + "\r\nServer: dsinfer\r\n";
    if (!(r.status == 204 || r.status == 304)) head += "Content-Type: " + r.content_type + "\r\n";
    for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
    if (!stream)
      head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    else if (!c.http10)
      head += "Transfer-Encoding: chunked\r\n";
    head += c.keep_alive ? (c.http10 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n";
    head += "\r\n";
    c.out += head;
    if (!stream) {
      if (!c.head_only) c.out += r.body;
      finish_response(c);
      return;
    }
    c.streaming = true;
    if (c.head_only) {
      finish_response(c);  // HEAD of a streaming route: headers only
      return;
    }
    op = kWrite;  // head.body, if any, is the first chunk
  }
  if (!c.streaming) return;
  if (op == kWrite && !r.body.empty()) {
    if (!c.http10) c.out += hex(r.body.size()) + "\r\n";
    c.out += r.body;
    if (!c.http10) c.out += "\r\n";
  } else if (op == kEnd) {
    if (!c.http10) c.out += "0\r\n\r\n";
    finish_response(c);
    return;
  }
  if (c.out.size() - c.out_off > options_.max_pending_output) {
    log_warn("dropping a client ", c.out.size() - c.out_off, " bytes behind its stream");
    ++counters_->timed_out_write;
    ++counters_->abandoned;
    close_conn(c);
    return;
  }
  flush(c);
}

void Server::finish_response(Conn& c) {
  c.exchange->complete();
  c.exchange.reset();
  c.streaming = false;
  --in_flight_;
  if (c.keep_alive && !draining_ && !stopping_) {
    c.phase = Conn::Phase::kReading;
    c.idle_since = now_seconds();
  } else {
    c.phase = Conn::Phase::kClosing;
  }
  const uint64_t id = c.id;
  flush(c);
  Conn* alive = find(id);
  if (!alive || alive->phase != Conn::Phase::kReading) return;
  if (alive->reading_paused) {
    alive->reading_paused = false;
    set_events(*alive, alive->events | EPOLLIN);
  }
  process_input(*alive);
}

void Server::flush(Conn& c) {
  while (c.output_pending()) {
    ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (w > 0) {
      c.out_off += size_t(w);
      c.last_write_progress = now_seconds();
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!(c.events & EPOLLOUT)) {
        if (c.last_write_progress == 0 || c.out_off == 0) c.last_write_progress = now_seconds();
        set_events(c, c.events | EPOLLOUT);
      }
      return;
    }
    if (c.exchange) ++counters_->abandoned;
    ++counters_->closed_peer;
    close_conn(c);
    return;
  }
  c.out.clear();
  c.out_off = 0;
  if (c.events & EPOLLOUT) set_events(c, c.events & ~uint32_t(EPOLLOUT));
  if (c.phase == Conn::Phase::kClosing && c.peer_eof) {
    close_conn(c);
    return;
  }
  if (c.phase == Conn::Phase::kClosing) {
    // Half-close, then read and drop until the client closes too (or linger_s): closing with
    // unread input would send a reset that can destroy the response before the client reads it.
    ::shutdown(c.fd, SHUT_WR);
    c.phase = Conn::Phase::kLingering;
    c.linger_until = now_seconds() + options_.linger_s;
    c.in.clear();
    if (c.reading_paused) {
      c.reading_paused = false;
      set_events(c, c.events | EPOLLIN);
    }
  }
}

void Server::close_conn(Conn& c) {
  std::shared_ptr<Exchange> x = std::move(c.exchange);
  if (x) --in_flight_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  --counters_->open;
  conns_.erase(c.id);  // c is gone from here on
  if (x) x->abandon();
}

void Server::check_deadlines(double now) {
  expired_.clear();  // reused: this runs ten times a second
  for (auto& [id, cp] : conns_) {
    Conn& c = *cp;
    switch (c.phase) {
      case Conn::Phase::kReading:
        if (!c.parser || !c.parser->started()) {
          if (c.in.empty() && now - c.idle_since > options_.idle_timeout_s) expired_.emplace_back(id, Expiry::kIdle);
        } else if (!c.parser->headers_complete()) {
          if (now - c.request_started > options_.header_timeout_s) expired_.emplace_back(id, Expiry::kHeaders);
        } else if (now - c.headers_done_at > options_.body_timeout_s) {
          expired_.emplace_back(id, Expiry::kBody);
        }
        break;
      case Conn::Phase::kHandling:
      case Conn::Phase::kClosing:
        if (c.output_pending() && now - c.last_write_progress > options_.write_timeout_s)
          expired_.emplace_back(id, Expiry::kWrite);
        break;
      case Conn::Phase::kLingering:
        if (now > c.linger_until) expired_.emplace_back(id, Expiry::kLinger);
        break;
    }
  }
  for (auto [id, why] : expired_) {
    Conn* c = find(id);
    if (!c) continue;
    switch (why) {
      case Expiry::kHeaders:
        ++counters_->timed_out_headers;
        answer_error(*c, 408, str("the request headers did not arrive within ", options_.header_timeout_s, " s"), true);
        continue;
      case Expiry::kBody:
        ++counters_->timed_out_body;
        answer_error(*c, 408, str("the request body did not arrive within ", options_.body_timeout_s, " s"), true);
        continue;
      case Expiry::kWrite:
        ++counters_->timed_out_write;
        if (c->exchange) ++counters_->abandoned;
        break;
      case Expiry::kIdle:
        ++counters_->closed_idle;
        break;
      case Expiry::kLinger:
        break;
    }
    close_conn(*c);
  }
}

}  // namespace dsinfer::serve::http
