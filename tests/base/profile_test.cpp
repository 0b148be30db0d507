#include "base/profile.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace dsinfer {
namespace {

// The switch is read once per process, so this test sets it before the first scope runs; no
// other test in this binary opens a ProfileScope.
TEST(Profile, ScopesAccumulateCallsAndTimeWhenEnabled) {
  setenv("DSINFER_PROFILE", "1", 1);
  ASSERT_TRUE(profile_enabled());
  for (int i = 0; i < 3; ++i) {
    ProfileScope scope("test.sleep");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  {
    ProfileScope early("test.stopped");
    early.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }  // the destructor after stop() must not add a second sample
  ProfileTotal t = profile_total("test.sleep");
  EXPECT_EQ(t.calls, 3);
  EXPECT_GE(t.seconds, 0.006);
  EXPECT_LT(t.seconds, 5.0);
  ProfileTotal s = profile_total("test.stopped");
  EXPECT_EQ(s.calls, 1);
  EXPECT_LT(s.seconds, 0.02);
  EXPECT_EQ(profile_total("test.never").calls, 0);
}

}  // namespace
}  // namespace dsinfer
