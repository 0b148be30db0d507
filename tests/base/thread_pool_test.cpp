#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace dsinfer {
namespace {

TEST(ThreadPool, RunsEveryTaskExactlyOnce) {
  ThreadPool pool(4);
  for (size_t n : {0u, 1u, 3u, 100u, 1000u}) {
    std::vector<std::atomic<int>> hits(n);
    pool.run(n, [&](size_t i) { hits[i]++; });
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST(ThreadPool, ParallelForCoversRangeWithoutOverlap) {
  std::vector<int> seen(10007, 0);
  parallel_for(seen.size(), 100, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) seen[i]++;
  });
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << i;
}

TEST(ThreadPool, ConcurrentCallersAreSerialisedSafely) {
  ThreadPool pool(3);
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r) pool.run(17, [&](size_t i) { total += long(i); });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4L * 50 * (16 * 17 / 2));
}

}  // namespace
}  // namespace dsinfer
