// How `dsinfer serve` and `dsinfer router` stop: SIGTERM or SIGINT drains (new requests refused,
// those in flight finished within the drain's own bound), a second signal exits at once with
// status 128 + signal. The signals go to one watcher thread, so they are blocked before any other
// thread exists (StopSignals' constructor) and waited for while the server runs (serve_until_stopped).
#pragma once

#include <signal.h>

#include <functional>

namespace dsinfer::app {

class StopSignals {
 public:
  // Blocks SIGTERM and SIGINT in this thread and every thread it starts from now on, and ignores
  // SIGPIPE (a vanished peer is an error return, not a dead process).
  StopSignals();
  // Unblocks them again (a rank that is not the front door lets mpirun's signals end it).
  void unblock();

  // Runs serve() on this thread until it returns. The first signal, or should_drain() turning
  // true (polled every 200 ms; may be empty), runs drain() on a thread of its own, which must
  // make serve() return; a second signal exits the process at once. `name` prefixes the message.
  void serve_until_stopped(const char* name, const std::function<void()>& serve, const std::function<void()>& drain,
                           const std::function<bool()>& should_drain = {});

 private:
  sigset_t sigs_;
};

}  // namespace dsinfer::app
