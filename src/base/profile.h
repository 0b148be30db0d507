// Opt-in wall-clock profile of named regions: with DSINFER_PROFILE=1 in the environment, every
// ProfileScope adds its time to a per-name total, and the totals are printed to stderr when the
// process exits (calls, total seconds, share). Without it a scope costs one predictable branch.
// Regions nest (an outer total includes its inner ones); names must be string literals.
#pragma once

#include <cstdint>

namespace dsinfer {

bool profile_enabled();
void profile_add(const char* name, double seconds);
// Calls and total seconds recorded so far for `name` (zeros if none); for tests and tools.
struct ProfileTotal {
  int64_t calls = 0;
  double seconds = 0;
};
ProfileTotal profile_total(const char* name);

class ProfileScope {
 public:
  explicit ProfileScope(const char* name) : name_(name), start_(profile_enabled() ? clock() : -1) {}
  ~ProfileScope() { stop(); }
  // Ends the region early (for regions that are not a C++ scope); later calls do nothing.
  void stop() {
    if (start_ >= 0) profile_add(name_, clock() - start_);
    start_ = -1;
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  static double clock();
  const char* name_;
  double start_;
};

}  // namespace dsinfer
