// Reads an engine request's stream to its end, for the engine tests: each update is handed to
// the caller as it arrives (what to keep differs per test), the waiting is bounded.
#pragma once

#include <functional>
#include <vector>

#include "base/timer.h"
#include "engine/request.h"

namespace dsinfer::testing {

// Hands every update of `s` to on_update until the request finishes or timeout_s passes; true
// when it finished.
inline bool drain_stream(engine::RequestStream& s, double timeout_s,
                         const std::function<void(const engine::ChoiceUpdate&)>& on_update) {
  const double end = now_seconds() + timeout_s;
  std::vector<engine::ChoiceUpdate> ups;
  bool done = false;
  while (!done && now_seconds() < end) {
    ups.clear();
    done = s.wait(ups, 0.05);  // returns as soon as there is news
    for (const engine::ChoiceUpdate& u : ups) on_update(u);
  }
  return done;
}

}  // namespace dsinfer::testing
