// An incremental HTTP/1.x request parser with hard limits (RFC 9112). The connection appends what
// it reads to a buffer and offers the parser the unconsumed part; the parser takes whole lines
// and any body bytes, and leaves a partial line in the buffer for next time. So a request that
// arrives one byte at a time costs no more memory than one arriving whole, and what the client
// can make the server hold is bounded by Limits before anything is allocated for it.
//
// Framing is strict where leniency lets requests be smuggled: Transfer-Encoding must be exactly
// "chunked" (else 501) and may not come with Content-Length (400); repeated Content-Length
// values must agree. Bare LF line ends are accepted (RFC 9112 2.2 allows it), bare CR is not.
// After the request is complete the parser stops: bytes of a pipelined next request stay in the
// caller's buffer for a fresh parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "serve/http_message.h"

namespace dsinfer::serve::http {

class RequestParser {
 public:
  enum class State { kRequestLine, kHeaders, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailers, kComplete, kError };

  explicit RequestParser(const Limits& limits) : limits_(limits) {}

  // Consumes a prefix of `data` and returns its length; call again with the rest plus new bytes.
  // Stops consuming at kComplete or kError.
  size_t feed(std::string_view data);

  State state() const { return state_; }
  bool complete() const { return state_ == State::kComplete; }
  bool failed() const { return state_ == State::kError; }
  // The request line and headers are in (the body may still be on its way): where the server
  // answers "Expect: 100-continue".
  bool headers_complete() const { return state_ > State::kHeaders && state_ != State::kError; }
  // Any byte of this request seen yet (a keep-alive connection with none is idle, not slow).
  bool started() const { return started_; }
  size_t body_bytes_expected() const { return content_length_; }  // Content-Length, 0 when chunked

  // On kError: the status to answer (400, 413, 414, 431, 501, 505) and why, in words a client
  // developer can act on.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

  Request& request() { return request_; }

 private:
  Limits limits_;
  State state_ = State::kRequestLine;
  Request request_;
  bool started_ = false;
  int empty_lines_ = 0;         // empty lines before the request line (tolerated, a few)
  size_t header_bytes_ = 0;     // header + trailer lines so far
  size_t fields_ = 0;           // header + trailer fields so far
  uint64_t content_length_ = 0;
  uint64_t remaining_ = 0;      // of the body (Content-Length) or of the current chunk
  int error_status_ = 0;
  std::string error_message_;

  bool fail(int status, std::string message);  // always false
  // Each returns false after fail().
  bool request_line(std::string_view line);
  bool header_line(std::string_view line);
  bool headers_done();
  bool chunk_size_line(std::string_view line);
};

}  // namespace dsinfer::serve::http
