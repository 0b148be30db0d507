#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
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

TEST(ThreadPool, ParallelRowsCoverRangeExactlyOnce) {
  // Small passes run on the caller in one call; large ones are split over the pool.
  for (auto [rows, elems] : {std::pair<size_t, size_t>{0, 10}, {1, 1u << 20}, {5, 100}, {3000, 1000}}) {
    std::vector<std::atomic<int>> hits(rows);
    std::atomic<int> calls{0};
    parallel_rows(rows, elems, [&](size_t b, size_t e) {
      ++calls;
      for (size_t i = b; i < e; ++i) hits[i]++;
    });
    for (size_t i = 0; i < rows; ++i) ASSERT_EQ(hits[i].load(), 1) << rows << " rows, row " << i;
    if (rows > 0 && rows * elems < (1u << 16)) {
      EXPECT_EQ(calls.load(), 1) << "a small pass is one call";
    }
    if (rows == 3000 && ThreadPool::global().size() > 1) {
      EXPECT_GT(calls.load(), 1) << "a large pass is split";
    }
  }
}

TEST(ThreadPool, SharesCoverRangeExactlyOnce) {
  for (size_t n : {0u, 1u, 2u, 3u, 7u, 100u, 1001u}) {
    std::vector<std::atomic<int>> hits(n);
    parallel_for_shares(n, [&](size_t i) { hits[i]++; });
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

// The first share's items are slow: its owner walks them front to back while the other threads,
// done with their own shares, take items from its back.
TEST(ThreadPool, SharesAreWalkedInOrderAndStolenFromTheBack) {
  const size_t threads = size_t(ThreadPool::global().size());
  if (threads < 2) GTEST_SKIP() << "one thread: nothing to steal";
  const size_t n = 8 * threads, first_share = n / threads;
  std::mutex mu;
  std::vector<std::pair<std::thread::id, size_t>> order;
  parallel_for_shares(n, [&](size_t i) {
    if (i < first_share) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard<std::mutex> lock(mu);
    order.emplace_back(std::this_thread::get_id(), i);
  });
  ASSERT_EQ(order.size(), n);
  std::thread::id owner;
  for (auto& [id, i] : order)
    if (i == 0) owner = id;
  size_t last = 0, stolen = 0, lowest_stolen = n;
  for (auto& [id, i] : order) {
    if (i >= first_share) continue;
    if (id == owner) {
      EXPECT_GE(i, last) << "the owner walks its share front to back";
      last = i;
    } else {
      ++stolen;
      lowest_stolen = std::min(lowest_stolen, i);
    }
  }
  EXPECT_GT(stolen, 0u) << "idle threads should have taken part of the slow share";
  EXPECT_GT(lowest_stolen, last) << "thieves take from the back, the owner from the front: they never cross";
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
