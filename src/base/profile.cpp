#include "base/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "base/timer.h"

namespace dsinfer {
namespace {

struct Entry {
  const char* name;
  int64_t calls = 0;
  double seconds = 0;
};

// Keyed by the literal's address: regions are few, so a linear scan beats hashing strings.
struct Profile {
  std::mutex mu;
  std::vector<Entry> entries;

  void print() {
    std::lock_guard<std::mutex> lock(mu);
    if (entries.empty()) return;
    std::vector<Entry> sorted = entries;
    double total = 0;
    for (const Entry& e : sorted) total = std::max(total, e.seconds);
    std::sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
    std::fprintf(stderr, "profile (DSINFER_PROFILE; nested regions overlap; %% of the largest):\n");
    for (const Entry& e : sorted)
      std::fprintf(stderr, "  %-28s %9lld calls %10.3f s %6.1f%%\n", e.name, static_cast<long long>(e.calls), e.seconds,
                   100 * e.seconds / total);
  }
};

// Never destroyed: threads still running at exit (an engine mid-step) may add to it while the
// atexit handler prints.
Profile& profile() {
  static Profile* p = [] {
    auto* created = new Profile;
    std::atexit([] { profile().print(); });
    return created;
  }();
  return *p;
}

}  // namespace

bool profile_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("DSINFER_PROFILE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

void profile_add(const char* name, double seconds) {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  for (Entry& e : p.entries)
    if (e.name == name) {
      e.calls++;
      e.seconds += seconds;
      return;
    }
  p.entries.push_back({name, 1, seconds});
}

ProfileTotal profile_total(const char* name) {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  for (const Entry& e : p.entries)
    if (e.name == name || std::string(e.name) == name) return {e.calls, e.seconds};
  return {};
}

double ProfileScope::clock() { return now_seconds(); }

}  // namespace dsinfer
