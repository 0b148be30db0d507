#include "router/upstream.h"

#include <httplib.h>

#include <chrono>
#include <cstdlib>

#include "base/error.h"

namespace dsinfer::router {

Endpoint parse_endpoint(const std::string& url) {
  std::string u = url;
  check(u.rfind("http://", 0) == 0, "an instance URL must start with http://, got '", url, "'");
  u = u.substr(7);
  while (!u.empty() && u.back() == '/') u.pop_back();
  const size_t colon = u.rfind(':');
  check(colon != std::string::npos && colon > 0, "an instance URL needs host:port, e.g. http://127.0.0.1:8001, got '",
        url, "'");
  Endpoint e{url, u.substr(0, colon), std::atoi(u.substr(colon + 1).c_str())};
  check(e.port > 0 && e.port < 65536 && u.find('/') == std::string::npos, "bad instance URL '", url, "'");
  return e;
}

namespace {

void set_timeouts(httplib::Client& cli, double timeout_s) {
  const auto us = std::chrono::microseconds(int64_t(timeout_s * 1e6));
  cli.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(
      std::min(us, std::chrono::microseconds(2'000'000))));
  cli.set_read_timeout(us);
  cli.set_write_timeout(us);
}

httplib::Request make_request(const std::string& method, const std::string& path, const std::string& body,
                              const Headers& headers) {
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.body = body;
  for (const auto& [k, v] : headers) req.set_header(k, v);
  if (!body.empty() && !req.has_header("Content-Type")) req.set_header("Content-Type", "application/json");
  return req;
}

}  // namespace

UpstreamReply call(const Endpoint& to, const std::string& method, const std::string& path, const std::string& body,
                   const Headers& headers, double timeout_s) {
  httplib::Client cli(to.host, to.port);
  set_timeouts(cli, timeout_s);
  httplib::Request req = make_request(method, path, body, headers);
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  UpstreamReply out;
  if (!cli.send(req, res, err)) {
    out.error = str(to.url, path, ": ", httplib::to_string(err));
    return out;
  }
  out.connected = true;
  out.status = res.status;
  out.body = std::move(res.body);
  out.content_type = res.get_header_value("Content-Type");
  out.retry_after = res.get_header_value("Retry-After");
  return out;
}

UpstreamReply call_streaming(const Endpoint& to, const std::string& path, const Headers& headers, double timeout_s,
                             const StreamHandlers& handlers) {
  httplib::Client cli(to.host, to.port);
  set_timeouts(cli, timeout_s);
  httplib::Request req = make_request("POST", path, "", headers);
  UpstreamReply out;
  req.response_handler = [&](const httplib::Response& r) {
    out.status = r.status;
    out.content_type = r.get_header_value("Content-Type");
    out.retry_after = r.get_header_value("Retry-After");
    return handlers.head(r.status, out.content_type, out.retry_after);
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) { return handlers.chunk(data, n); };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (!cli.send(req, res, err)) {
    out.connected = out.status != 0;
    out.error = str(to.url, path, ": ", httplib::to_string(err));
    return out;
  }
  out.connected = true;
  return out;
}

}  // namespace dsinfer::router
