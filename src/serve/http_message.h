// An HTTP/1.x request as the parser delivers it, and the limits that bound what a client may make
// the server hold. Header names are lower-cased on the way in (they are case-insensitive), so
// lookups compare bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsinfer::serve::http {

struct Limits {
  size_t max_request_line = 8 << 10;  // method + target + version; longer: 414
  size_t max_header_bytes = 32 << 10; // all header (and trailer) lines together; more: 431
  size_t max_header_count = 100;      // header (and trailer) fields; more: 431
  size_t max_body_bytes = 8 << 20;    // the body as the handler sees it (de-chunked and decoded); more: 413
};

struct Request {
  std::string method;  // as sent (methods are case-sensitive)
  std::string target;  // request-target as sent
  std::string path;    // target without query (absolute-form "http://host/p" gives "/p")
  std::string query;   // after '?', without it
  int version_minor = 1;  // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case, values trimmed
  std::string body;    // de-chunked; Content-Encoding is decoded by the server before handlers run

  // The first value of a header, or nullptr. `lower_name` must be lower-case.
  const std::string* header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return &v;
    return nullptr;
  }
  // HTTP/1.1 keeps the connection unless the client says close; HTTP/1.0 only when it asks.
  bool keep_alive() const;
  bool expects_continue() const;  // "Expect: 100-continue"
};

// True when the comma-separated header value contains `token` (case-insensitive).
bool header_has_token(std::string_view value, std::string_view token);

// Header values and tokens as RFC 9110 treats them: optional whitespace (SP, HTAB) around a
// value is not part of it, and tokens compare ASCII case-insensitively.
std::string_view trim_ows(std::string_view s);
std::string ascii_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

}  // namespace dsinfer::serve::http
