#include "stop_signals.h"

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "base/log.h"

namespace dsinfer::app {

StopSignals::StopSignals() {
  sigemptyset(&sigs_);
  sigaddset(&sigs_, SIGTERM);
  sigaddset(&sigs_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs_, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void StopSignals::unblock() { pthread_sigmask(SIG_UNBLOCK, &sigs_, nullptr); }

void StopSignals::serve_until_stopped(const char* name, const std::function<void()>& serve,
                                      const std::function<void()>& drain, const std::function<bool()>& should_drain) {
  std::atomic<bool> finished{false};
  std::thread drainer;
  // The drain runs on its own thread so the watcher keeps listening for the second signal.
  std::thread watcher([&] {
    timespec tick{0, 200 * 1000 * 1000};
    bool draining = false;
    while (!finished) {
      const int sig = sigtimedwait(&sigs_, nullptr, &tick);
      if (!draining && should_drain && should_drain()) {
        draining = true;
        drainer = std::thread(drain);
        continue;
      }
      if (sig != SIGTERM && sig != SIGINT) continue;
      if (draining) {
        std::fprintf(stderr, "dsinfer %s: second signal %d: exiting now\n", name, sig);
        std::_Exit(128 + sig);
      }
      draining = true;
      log_info("signal ", sig, ": draining (a second signal exits at once)");
      drainer = std::thread(drain);
    }
  });
  serve();
  finished = true;
  watcher.join();
  if (drainer.joinable()) drainer.join();
}

}  // namespace dsinfer::app
