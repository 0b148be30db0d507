#include "serve/http_parser.h"

#include <algorithm>
#include <cctype>

#include "base/error.h"

namespace dsinfer::serve::http {

namespace {

constexpr size_t kMaxMethod = 32;
constexpr size_t kMaxChunkSizeLine = 1024;  // hex size plus extensions we ignore
constexpr int kMaxLeadingEmptyLines = 4;    // RFC 9112 2.2: tolerate "at least one"

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(c); }); }

// A byte that can appear nowhere in a request line: controls, DEL, and non-ASCII (a target
// must be percent-encoded). Catches a TLS ClientHello or binary garbage at the first byte.
bool bad_request_line_byte(unsigned char c) { return c < 0x20 || c >= 0x7f; }

// Field values may hold visible ASCII, SP, HTAB and obs-text; no other controls (NUL, CR, ...).
bool bad_field_byte(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

// A prefix of a request line that cannot become a valid one, whatever follows.
bool hopeless_request_line_prefix(std::string_view partial) {
  size_t sp = partial.find(' ');
  std::string_view method = partial.substr(0, sp);
  if (method.size() > kMaxMethod) return true;
  for (char c : method)
    if (!is_tchar(static_cast<unsigned char>(c)) && c != '\r') return true;
  for (size_t i = 0; i < partial.size(); ++i) {
    auto c = static_cast<unsigned char>(partial[i]);
    if (c == '\r' && i + 1 == partial.size()) continue;  // the CR of a CRLF still in flight
    if (bad_request_line_byte(c) && c != ' ') return true;
  }
  return false;
}

}  // namespace

bool RequestParser::fail(int status, std::string message) {
  state_ = State::kError;
  error_status_ = status;
  error_message_ = std::move(message);
  return false;
}

size_t RequestParser::feed(std::string_view data) {
  if (!data.empty()) started_ = true;
  size_t pos = 0;
  while (state_ != State::kComplete && state_ != State::kError && pos < data.size()) {
    if (state_ == State::kBody || state_ == State::kChunkData) {
      size_t take = size_t(std::min<uint64_t>(remaining_, data.size() - pos));
      request_.body.append(data.data() + pos, take);
      pos += take;
      remaining_ -= take;
      if (remaining_ == 0) state_ = state_ == State::kBody ? State::kComplete : State::kChunkEnd;
      continue;
    }
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) {
      // A partial line: refuse it now if it is already too long or can never be valid, so a
      // client cannot park bytes (or a TLS hello) and wait.
      std::string_view partial = data.substr(pos);
      switch (state_) {
        case State::kRequestLine:
          // A trailing CR may be the first half of the line's CRLF: it does not count yet, so a
          // line is judged the same whether or not a read ends between its CR and LF.
          if (partial.size() - (partial.back() == '\r') > limits_.max_request_line)
            fail(414, str("the request line is longer than ", limits_.max_request_line, " bytes"));
          else if (hopeless_request_line_prefix(partial))
            fail(400, "this is not an HTTP/1.x request line");
          break;
        case State::kHeaders:
        case State::kTrailers: {
          // Refused only when the whole line must be: it will count at least its bytes so far
          // (less a trailing CR, maybe half of its CRLF) plus 2. A lone CR may begin the empty line
          // that ends the headers, which counts nothing, however full the budget is.
          const size_t chars = partial.size() - (partial.back() == '\r');
          if (chars > 0 && header_bytes_ + chars + 2 > limits_.max_header_bytes)
            fail(431, str("the request headers are larger than ", limits_.max_header_bytes, " bytes"));
          break;
        }
        case State::kChunkSize:
          if (partial.size() - (partial.back() == '\r') > kMaxChunkSizeLine) fail(400, "a chunk-size line is too long");
          break;
        case State::kChunkEnd:
          if (partial.size() > 1) fail(400, "chunk data is longer than its chunk-size says");
          break;
        default: break;
      }
      return pos;  // the partial line stays with the caller
    }
    std::string_view line = data.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool ok = true;
    switch (state_) {
      case State::kRequestLine: ok = request_line(line); break;
      case State::kHeaders: ok = header_line(line); break;
      case State::kChunkSize: ok = chunk_size_line(line); break;
      case State::kChunkEnd:
        if (!line.empty())
          ok = fail(400, "chunk data is longer than its chunk-size says");
        else
          state_ = State::kChunkSize;
        break;
      case State::kTrailers: ok = header_line(line); break;
      default: break;
    }
    if (!ok) return pos;
  }
  return pos;
}

bool RequestParser::request_line(std::string_view line) {
  if (line.empty()) {
    if (++empty_lines_ > kMaxLeadingEmptyLines) return fail(400, "empty lines instead of a request line");
    return true;
  }
  if (line.size() > limits_.max_request_line)
    return fail(414, str("the request line is longer than ", limits_.max_request_line, " bytes"));
  for (char c : line)
    if (c != ' ' && bad_request_line_byte(static_cast<unsigned char>(c)))
      return fail(400, "the request line holds a control or non-ASCII byte");
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2)
    return fail(400, "a request line is METHOD SP target SP HTTP/1.1");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || method.size() > kMaxMethod) return fail(400, "the request method is not a token");
  if (target.empty() || target.find(' ') != std::string_view::npos)
    return fail(400, "the request target is empty or holds a space");
  if (version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[6] == '.' && version[5] >= '0' &&
      version[5] <= '9' && version[7] >= '0' && version[7] <= '9') {
    if (version[5] != '1') return fail(505, str(version, " is not supported; this server speaks HTTP/1.1"));
    request_.version_minor = version[7] - '0';
  } else {
    return fail(400, "the request line does not end in HTTP/1.x");
  }
  request_.method = method;
  request_.target = target;
  std::string_view path = target;
  if (path.front() != '/') {
    // absolute-form (to a proxy, or from a client that always sends it): keep the path only.
    size_t scheme = path.find("://");
    if (path == "*" && method == "OPTIONS") {
      // asterisk-form; routes see "*"
    } else if (scheme != std::string_view::npos && scheme > 0) {
      size_t slash = path.find('/', scheme + 3);
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    } else {
      return fail(400, "the request target must be a path starting with '/'");
    }
  }
  size_t q = path.find('?');
  request_.path = path.substr(0, q);
  if (q != std::string_view::npos) request_.query = path.substr(q + 1);
  size_t hash = request_.path.find('#');
  if (hash != std::string::npos) request_.path.resize(hash);
  state_ = State::kHeaders;
  return true;
}

bool RequestParser::header_line(std::string_view line) {
  const bool trailer = state_ == State::kTrailers;
  if (line.empty()) {
    if (trailer) {
      state_ = State::kComplete;
      return true;
    }
    return headers_done();
  }
  header_bytes_ += line.size() + 2;
  if (header_bytes_ > limits_.max_header_bytes)
    return fail(431, str("the request headers are larger than ", limits_.max_header_bytes, " bytes"));
  if (line.front() == ' ' || line.front() == '\t')
    return fail(400, "folded header lines (obs-fold) are not accepted");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "a header line has no ':'");
  std::string_view name = line.substr(0, colon);
  if (!is_token(name)) return fail(400, "a header name is empty or holds a space or separator");
  std::string_view value = trim_ows(line.substr(colon + 1));
  for (char c : value)
    if (bad_field_byte(static_cast<unsigned char>(c)))
      return fail(400, str("the value of header '", name, "' holds a control byte"));
  // Trailers are counted against the same limits and then dropped: no route reads them.
  if (++fields_ > limits_.max_header_count)
    return fail(431, str("more than ", limits_.max_header_count, " header fields"));
  if (!trailer) request_.headers.emplace_back(ascii_lower(name), std::string(value));
  return true;
}

bool RequestParser::headers_done() {
  int hosts = 0;
  bool chunked = false, has_te = false, has_cl = false;
  uint64_t cl = 0;
  for (const auto& [k, v] : request_.headers) {
    if (k == "host") ++hosts;
    if (k == "transfer-encoding") {
      if (has_te || !iequals(trim_ows(v), "chunked"))
        return fail(501, str("Transfer-Encoding '", v, "' is not supported (only 'chunked')"));
      has_te = chunked = true;
    }
    if (k == "content-length") {
      std::string_view rest = v;
      while (true) {
        size_t comma = rest.find(',');
        std::string_view one = trim_ows(rest.substr(0, comma));
        if (one.empty() || one.size() > 19 || !std::all_of(one.begin(), one.end(), [](char c) { return c >= '0' && c <= '9'; }))
          return fail(one.size() > 19 ? 413 : 400, str("Content-Length '", v, "' is not a valid length"));
        uint64_t n = std::stoull(std::string(one));
        if (has_cl && n != cl) return fail(400, "conflicting Content-Length values");
        cl = n;
        has_cl = true;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
  }
  if (request_.version_minor >= 1 && hosts != 1)
    return fail(400, hosts == 0 ? "an HTTP/1.1 request needs a Host header" : "more than one Host header");
  if (has_te && has_cl) return fail(400, "a request may not carry both Transfer-Encoding and Content-Length");
  if (has_cl && cl > limits_.max_body_bytes)
    return fail(413, str("the request body (", cl, " bytes) is larger than the limit of ", limits_.max_body_bytes,
                         " bytes")),
           false;
  content_length_ = cl;
  if (chunked) {
    state_ = State::kChunkSize;
  } else if (cl > 0) {
    request_.body.reserve(size_t(cl));
    remaining_ = cl;
    state_ = State::kBody;
  } else {
    state_ = State::kComplete;
  }
  return true;
}

bool RequestParser::chunk_size_line(std::string_view line) {
  if (line.size() > kMaxChunkSizeLine) return fail(400, "a chunk-size line is too long");
  std::string_view size = trim_ows(line.substr(0, line.find(';')));  // chunk extensions are ignored
  if (size.empty() || !std::all_of(size.begin(), size.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
    return fail(400, "a chunk-size is not a hexadecimal number");
  while (size.size() > 1 && size.front() == '0') size.remove_prefix(1);
  if (size.size() > 15) return fail(413, "a chunk is larger than the request body limit");
  uint64_t n = std::stoull(std::string(size), nullptr, 16);
  if (n == 0) {
    state_ = State::kTrailers;
    return true;
  }
  if (request_.body.size() + n > limits_.max_body_bytes)
    return fail(413, str("the request body is larger than the limit of ", limits_.max_body_bytes, " bytes"));
  remaining_ = n;
  state_ = State::kChunkData;
  return true;
}

}  // namespace dsinfer::serve::http
