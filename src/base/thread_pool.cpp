#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
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

thread_local size_t tl_worker_index = 0;

}  // namespace

size_t ThreadPool::worker_index() { return tl_worker_index; }

ThreadPool::ThreadPool(int num_threads) {
  if (const char* env = std::getenv("DSINFER_SPIN_US")) spin_ns_ = int64_t(std::atof(env) * 1000);
  for (int i = 1; i < num_threads; ++i)
    workers_.emplace_back([this, i] {
      tl_worker_index = size_t(i);
      worker_loop();
    });
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
    const FunctionRef<void(size_t)>* fn;
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

void ThreadPool::run(size_t num_tasks, FunctionRef<void(size_t)> fn) {
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

void parallel_for(size_t n, size_t grain, FunctionRef<void(size_t, size_t)> fn) {
  if (n == 0) return;
  ThreadPool& pool = ThreadPool::global();
  grain = std::max<size_t>(grain, 1);
  size_t max_chunks = (n + grain - 1) / grain;
  size_t chunks = std::min<size_t>(max_chunks, size_t(pool.size()) * 4);
  size_t per = (n + chunks - 1) / chunks;
  chunks = (n + per - 1) / per;
  pool.run(chunks, [&](size_t c) { fn(c * per, std::min(n, (c + 1) * per)); });
}

void parallel_rows(size_t rows, size_t row_elems, FunctionRef<void(size_t, size_t)> fn) {
  constexpr size_t kInline = size_t(1) << 16, kChunk = size_t(1) << 14;
  if (rows == 0) return;
  row_elems = std::max<size_t>(row_elems, 1);
  if (rows == 1 || rows * row_elems < kInline) {
    fn(0, rows);
    return;
  }
  parallel_for(rows, std::max<size_t>(1, kChunk / row_elems), fn);
}

namespace {

// A share is (next, end) in one word, so the owner advancing next and thieves lowering end
// agree through compare-and-swap alone.
struct alignas(64) Share {
  std::atomic<uint64_t> range{0};  // next in the low 32 bits, end in the high 32

  bool take_front(size_t* i) {
    uint64_t r = range.load();
    for (;;) {
      const uint64_t next = r & 0xffffffffu, end = r >> 32;
      if (next >= end) return false;
      if (range.compare_exchange_weak(r, (next + 1) | (end << 32))) return *i = size_t(next), true;
    }
  }
  bool take_back(size_t* i) {
    uint64_t r = range.load();
    for (;;) {
      const uint64_t next = r & 0xffffffffu, end = r >> 32;
      if (next >= end) return false;
      if (range.compare_exchange_weak(r, next | ((end - 1) << 32))) return *i = size_t(end - 1), true;
    }
  }
  uint64_t left() const {
    const uint64_t r = range.load();
    return (r >> 32) > (r & 0xffffffffu) ? (r >> 32) - (r & 0xffffffffu) : 0;
  }
};

}  // namespace

void parallel_for_shares(size_t n, FunctionRef<void(size_t)> fn) {
  if (n == 0) return;
  ThreadPool& pool = ThreadPool::global();
  const size_t threads = std::min(size_t(pool.size()), n);
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  if (n >= (size_t(1) << 32)) throw std::length_error("parallel_for_shares: more than 2^32 items");
  // The calling thread's shares, reused (a decode step makes ~150 calls); the workers reach them
  // through the pointer captured below, not through their own thread_local.
  static thread_local std::unique_ptr<Share[]> tl_shares;
  static thread_local size_t tl_count = 0;
  if (tl_count < threads) tl_shares.reset(new Share[threads]), tl_count = threads;
  Share* shares = tl_shares.get();
  for (size_t t = 0; t < threads; ++t) {
    const uint64_t b = n * t / threads, e = n * (t + 1) / threads;
    shares[t].range.store(b | (e << 32));
  }
  pool.run(threads, [&](size_t t) {
    size_t i;
    while (shares[t].take_front(&i)) fn(i);
    for (;;) {
      size_t fullest = threads;
      uint64_t most = 0;
      for (size_t o = 0; o < threads; ++o)
        if (shares[o].left() > most) most = shares[o].left(), fullest = o;
      if (fullest == threads) return;
      if (shares[fullest].take_back(&i)) fn(i);
    }
  });
}

}  // namespace dsinfer
