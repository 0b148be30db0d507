// dsinfer router: the OpenAI/DeepSeek API in front of prefill and decode instances
// (`dsinfer serve --role prefill|decode`), DeepSeek's disaggregated serving (router/router.h,
// docs/serving.md). SIGTERM or SIGINT drains (new requests 503, in-flight ones finish, bounded by
// --drain-timeout); a second signal exits at once.
#include <cstdio>

#include "base/error.h"
#include "command.h"
#include "router/router.h"
#include "stop_signals.h"

namespace dsinfer::app {
namespace {

int run(Args& args) {
  router::RouterOptions o;
  o.prefill_urls = split_commas(args.require("prefill"));
  o.decode_urls = split_commas(args.require("decode"));
  o.http.host = args.get_or("host", o.http.host);
  o.http.port = int(args.get_int("port", o.http.port, 0, 65535));
  o.poll_interval_s = args.get_double("poll-interval", o.poll_interval_s, 0.01, 60);
  o.upstream_timeout_s = args.get_double("upstream-timeout", o.upstream_timeout_s, 0.1, 86400);
  o.max_prefill_attempts = int(args.get_int("max-prefill-attempts", o.max_prefill_attempts, 1, 100));
  o.max_inflight = args.get_int("max-inflight", o.max_inflight, 1, 1 << 20);
  o.drain_timeout_s = args.get_double("drain-timeout", o.drain_timeout_s, 0, 86400);
  o.http.limits.max_body_bytes = size_t(args.get_double("max-body-mb", 8, 0.001, 4096) * (1 << 20));
  args.finish();

  StopSignals signals;  // before any other thread exists
  router::Router r(o);
  const int port = r.bind();
  std::printf("dsinfer router: %zu prefill and %zu decode instances, listening on http://%s:%d\n", o.prefill_urls.size(),
              o.decode_urls.size(), o.http.host.c_str(), port);
  std::fflush(stdout);
  signals.serve_until_stopped("router", [&] { r.serve(); }, [&] { r.drain(); });
  std::printf("dsinfer router: stopped\n");
  std::fflush(stdout);
  return 0;
}

const Registration reg({"router", "the API in front of prefill and decode instances (disaggregated serving)",
                        "--prefill URL[,URL...] --decode URL[,URL...] [--host 127.0.0.1] [--port 8000]\n"
                        "       [--poll-interval 0.1] [--upstream-timeout 60] [--max-prefill-attempts 3]\n"
                        "       [--max-inflight 1024] [--drain-timeout 30] [--max-body-mb 8]\n"
                        "       (instances: dsinfer serve --role prefill|decode; docs/serving.md)",
                        run});

}  // namespace
}  // namespace dsinfer::app
