// Wall-clock timing for benchmarks and per-request latency.
#pragma once

#include <chrono>

namespace dsinfer {

inline double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Seconds since the Unix epoch: comparable with file times (st_mtim) and across processes.
inline double now_seconds_since_epoch() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace dsinfer
