#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

namespace dsinfer {

namespace {

// Spins until pred() holds or `ns` nanoseconds pass; true when pred() held.
template <typename Pred>
bool spin_until(Pred pred, int64_t ns) {
  if (ns <= 0) return pred();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
  for (int i = 0;; ++i) {
    if (pred()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= deadline) return false;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (const char* env = std::getenv("DSINFER_SPIN_US")) spin_ns_ = int64_t(std::atof(env) * 1000);
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims tasks one at a time until none remain. Called with mu_ unlocked.
void ThreadPool::drain() {
  for (;;) {
    size_t task;
    const std::function<void(size_t)>* fn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (next_task_ >= num_tasks_) return;
      task = next_task_++;
      fn = fn_;
    }
    (*fn)(task);
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_.fetch_add(1) + 1 == num_tasks_) done_.notify_all();
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    auto woken = [&] { return stop_.load() || generation_.load() != seen; };
    if (!spin_until(woken, spin_ns_)) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, woken);
    }
    if (stop_) return;
    seen = generation_.load();
    drain();
  }
}

void ThreadPool::run(size_t num_tasks, const std::function<void(size_t)>& fn) {
  if (num_tasks == 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (size_t i = 0; i < num_tasks; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> serial(run_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    num_tasks_ = num_tasks;
    next_task_ = 0;
    finished_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  drain();
  auto all_done = [&] { return finished_.load() == num_tasks_; };
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  if (!spin_until(all_done, spin_ns_)) {
    lock.lock();
    done_.wait(lock, all_done);
  } else {
    lock.lock();  // order with the last finisher's unlock before reusing the shared state
  }
  fn_ = nullptr;
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("DSINFER_THREADS")) {
      int n = std::atoi(env);
      if (n > 0) return n;
    }
    return std::max(1, int(std::thread::hardware_concurrency()));
  }());
  return pool;
}

void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  ThreadPool& pool = ThreadPool::global();
  grain = std::max<size_t>(grain, 1);
  size_t max_chunks = (n + grain - 1) / grain;
  size_t chunks = std::min<size_t>(max_chunks, size_t(pool.size()) * 4);
  size_t per = (n + chunks - 1) / chunks;
  chunks = (n + per - 1) / per;
  pool.run(chunks, [&](size_t c) { fn(c * per, std::min(n, (c + 1) * per)); });
}

}  // namespace dsinfer
