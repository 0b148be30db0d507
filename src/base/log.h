// Minimal leveled logging to stderr. DSINFER_LOG=debug|info|warn|error sets the threshold.
#pragma once

#include <atomic>
#include <string>

#include "base/error.h"

namespace dsinfer {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

bool log_enabled(LogLevel level);
void log_line(LogLevel level, const std::string& msg);
// Put before every line from now on ("rank 2: " in an expert-parallel group). Set once at start,
// before other threads log.
void set_log_prefix(const std::string& prefix);

template <typename... Parts>
void log_info(Parts&&... parts) {
  if (log_enabled(LogLevel::kInfo)) log_line(LogLevel::kInfo, str(std::forward<Parts>(parts)...));
}
template <typename... Parts>
void log_warn(Parts&&... parts) {
  if (log_enabled(LogLevel::kWarn)) log_line(LogLevel::kWarn, str(std::forward<Parts>(parts)...));
}
// Warns only the first time `said` is passed: for a condition every thread or instance would
// otherwise report again (each call site keeps its own `static std::atomic<bool>`).
template <typename... Parts>
void log_warn_once(std::atomic<bool>& said, Parts&&... parts) {
  if (!said.exchange(true)) log_warn(std::forward<Parts>(parts)...);
}
template <typename... Parts>
void log_debug(Parts&&... parts) {
  if (log_enabled(LogLevel::kDebug)) log_line(LogLevel::kDebug, str(std::forward<Parts>(parts)...));
}

}  // namespace dsinfer
