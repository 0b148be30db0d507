// The router's view of one prefill or decode instance: its address, and blocking HTTP calls to
// it (cpp-httplib's client) that return what came back or why nothing did, never throwing for a
// peer that is down, slow or dropped mid-reply.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace dsinfer::router {

struct Endpoint {
  std::string url;  // as given: http://host:port
  std::string host;
  int port = 0;
};

// Parses http://host:port[/]; throws Error naming the URL otherwise.
Endpoint parse_endpoint(const std::string& url);

struct UpstreamReply {
  bool connected = false;  // false: no HTTP reply at all (refused, reset, timed out); see error
  int status = 0;
  std::string body, content_type, retry_after;
  std::string error;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One request, its whole reply read (timeouts in seconds: connecting, and between reads).
UpstreamReply call(const Endpoint& to, const std::string& method, const std::string& path, const std::string& body,
                   const Headers& headers, double timeout_s);

// A reply read as it arrives: `head` once the status and headers are in (return false to stop),
// then `chunk` for every piece of the body (return false to stop). The result's body is empty;
// `connected` and `error` say whether the reply ended normally (a stop is an error too).
struct StreamHandlers {
  std::function<bool(int status, const std::string& content_type, const std::string& retry_after)> head;
  std::function<bool(const char* data, size_t size)> chunk;
};
UpstreamReply call_streaming(const Endpoint& to, const std::string& path, const Headers& headers, double timeout_s,
                             const StreamHandlers& handlers);

}  // namespace dsinfer::router
