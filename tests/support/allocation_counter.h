// Counts heap allocations (global operator new, every thread not excluded) while a window is open. Linking
// allocation_counter.cpp into a test binary replaces operator new/delete for that binary; outside
// a window the replacement only forwards to malloc. With DSINFER_TRACE_ALLOCATIONS=1 the first
// few allocations inside a window print a backtrace to stderr (how one finds them).
#pragma once

#include <cstdint>

namespace dsinfer::testing {

class AllocationWindow {
 public:
  AllocationWindow();   // opens: counting starts at zero
  ~AllocationWindow();  // closes
  int64_t count() const;  // allocations since the window opened
  // Allocations by the calling thread are not counted from now on (a test's own thread reading
  // results while it measures another thread's loop).
  static void exclude_this_thread();
};

}  // namespace dsinfer::testing
