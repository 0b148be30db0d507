#include "base/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace dsinfer {

static LogLevel threshold() {
  static const LogLevel level = [] {
    const char* env = std::getenv("DSINFER_LOG");
    if (!env) return LogLevel::kInfo;
    if (!std::strcmp(env, "debug")) return LogLevel::kDebug;
    if (!std::strcmp(env, "warn")) return LogLevel::kWarn;
    if (!std::strcmp(env, "error")) return LogLevel::kError;
    return LogLevel::kInfo;
  }();
  return level;
}

bool log_enabled(LogLevel level) { return level >= threshold(); }

static std::string& prefix() {
  static std::string p;
  return p;
}

void set_log_prefix(const std::string& p) { prefix() = p; }

void log_line(LogLevel level, const std::string& msg) {
  static std::mutex mu;
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "[%s] %s%s\n", names[int(level)], prefix().c_str(), msg.c_str());
}

}  // namespace dsinfer
