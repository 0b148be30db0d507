// An event-driven HTTP/1.1 server: one thread owns every socket through epoll, so a connection
// costs a file descriptor and a few buffers, never a thread. A thousand clients trickling a byte
// every few seconds cannot starve anyone: each waits in the same loop as the fast ones, under
// deadlines they cannot extend (headers, body, idle keep-alive, unread output), and when the
// connection table is full the slowest idle or half-sent connection makes room for the new one.
//
// Handlers run on the loop (cheap routes: health, metrics) or on a small worker pool (routes that
// parse and tokenize large bodies). Either way they answer through a Reply, from any thread and
// at any later time: whole (send) or as a chunked stream (begin_stream, write, end). Every Reply
// operation is posted to the loop, which owns the socket. A client that goes away before its
// response is complete fires the Reply's on_abandon hook, which is how work nobody waits for is
// cancelled. Responses go out in request order; pipelined requests wait in the input buffer
// until the response before them is done.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "serve/http_message.h"

namespace dsinfer::serve::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port (see bind())
  Limits limits;
  double header_timeout_s = 10;  // from a request's first byte to the end of its headers
  double body_timeout_s = 30;    // from the end of the headers to the end of the body
  double idle_timeout_s = 5;     // a connection with no request in progress (also a new one)
  double write_timeout_s = 30;   // output waiting that long without the client reading any of it
  double linger_s = 2;           // after a final response: read (and drop) what the client still sends
  size_t max_connections = 1024;
  int worker_threads = 2;
  size_t max_pending_output = 16 << 20;  // a client this far behind a stream is dropped
};

struct Response {
  int status = 200;
  std::string content_type;  // empty: application/json (applied when the head is written, so a
                             // stream chunk, which travels as a Response too, allocates no type)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones, e.g. Retry-After
};

// Connection counters for /metrics. Read from any thread.
struct ConnectionStats {
  uint64_t accepted = 0, open = 0;
  uint64_t closed_idle = 0, closed_peer = 0;      // normal ends
  uint64_t timed_out_headers = 0, timed_out_body = 0, timed_out_write = 0;
  uint64_t evicted = 0, refused_full = 0;          // the connection table was full
  uint64_t abandoned = 0;                          // client gone before its response was complete
  uint64_t bad_requests = 0;                       // refused by the parser or the content decoder
};

class Exchange;
class Server;

// The handle a handler answers through. Copyable; every method is thread-safe and may be called
// after the client has gone (it then does nothing).
class Reply {
 public:
  explicit Reply(std::shared_ptr<Exchange> x) : x_(std::move(x)) {}
  void send(Response r) const;
  // Starts a chunked response; head.body (if any) is the first chunk.
  void begin_stream(Response head) const;
  void write(std::string data) const;
  void end() const;
  // Called once, on the loop thread, if the connection closes before the response is complete
  // (client gone, timed out, dropped for not reading, or the server stopping). Set it before
  // starting long work; set after abandonment it runs at once.
  void on_abandon(std::function<void()> fn) const;
  bool abandoned() const;

 private:
  std::shared_ptr<Exchange> x_;
};

using Handler = std::function<void(Request&, Reply)>;
enum class RunOn { kLoop, kWorker };

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes match the path exactly. HEAD is served by the GET route without the body; a known
  // path with another method gets 405 with Allow.
  void route(const std::string& method, const std::string& path, Handler handler, RunOn where = RunOn::kLoop);
  // Bodies for the errors the server answers itself (400, 404, 405, 408, 413, 415, 431, 500...).
  void set_error_response(std::function<Response(int status, const std::string& message)> fn);
  // Called on the loop thread with each response's path and status (for counters).
  void set_response_observer(std::function<void(const std::string& path, int status)> fn);

  int bind();  // returns the port (useful with port 0); throws Error
  void run();  // the event loop, until stop()

  // Runs fn on the loop thread. Thread-safe; dropped once the loop has stopped.
  void post(std::function<void()> fn);
  // post() as a value that stays safe to call after this Server is gone (it then drops fn):
  // for callbacks held by objects that may outlive the server, such as engine request streams.
  std::function<void(std::function<void()>)> poster() const;
  // Thread-safe. Closes idle connections now and every other one after its current response.
  void begin_drain();
  // Thread-safe. The loop closes every connection (abandoning unfinished responses) and returns.
  void stop();

  // Responses started but not yet fully written.
  int64_t responses_in_flight() const { return in_flight_.load(); }
  ConnectionStats stats() const;

 private:
  friend class Exchange;
  friend class Reply;
  struct Conn;
  struct Route;
  struct Mailbox;
  struct Workers;
  struct Counters;

  ServerOptions options_;
  int listen_fd_ = -1, epoll_fd_ = -1;
  std::shared_ptr<Mailbox> mailbox_;
  std::unique_ptr<Workers> workers_;
  std::unique_ptr<Counters> counters_;
  std::unordered_map<std::string, std::vector<Route>> routes_;
  std::function<Response(int, const std::string&)> error_response_;
  std::function<void(const std::string&, int)> observer_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  enum class Expiry { kIdle, kHeaders, kBody, kWrite, kLinger };
  std::vector<std::pair<uint64_t, Expiry>> expired_;  // check_deadlines' list
  uint64_t next_conn_id_ = 2;  // 0: the listening socket, 1: the mailbox's eventfd
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> stopping_{false};
  bool draining_ = false;

  void accept_all();
  void on_event(Conn& c, uint32_t events);
  void read_from(Conn& c);
  void process_input(Conn& c);
  void dispatch(Conn& c);
  void answer_error(Conn& c, int status, const std::string& message, bool close);
  void deliver(const std::shared_ptr<Exchange>& x, int op, Response r);
  void finish_response(Conn& c);
  void flush(Conn& c);
  void close_conn(Conn& c);
  void check_deadlines(double now);
  void set_events(Conn& c, uint32_t events);
  Conn* find(uint64_t id);
};

}  // namespace dsinfer::serve::http
