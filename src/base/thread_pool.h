// A fixed pool of worker threads for data-parallel loops. Kernels split their work into
// chunks whose boundaries depend only on the problem size (never on timing), so results are
// bit-identical from run to run and independent of the thread count where the kernel promises it.
//
// Idle workers spin for a short while (DSINFER_SPIN_US, default 200 µs; 0 disables) before they
// sleep: a batch-1 decode step dispatches ~150 kernels of tens of microseconds each, and waking a
// sleeping thread costs 25-95 µs on a VM — more than a small GEMV takes to stream its weights.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "base/function_ref.h"

namespace dsinfer {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // Which of the pool's threads is running: 1..size()-1 for its workers, 0 for any other thread
  // (the caller of run(), which works beside them). Indexes per-thread scratch (WorkerSlots).
  static size_t worker_index();

  // Runs fn(task) for task in [0, num_tasks), spread over the pool and the calling thread.
  // Returns when all tasks are done. Not reentrant: a task must not call run() again.
  void run(size_t num_tasks, FunctionRef<void(size_t)> fn);

  // The process-wide pool, sized by DSINFER_THREADS or the hardware concurrency.
  static ThreadPool& global();

 private:
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one run() at a time when several threads share the pool
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const FunctionRef<void(size_t)>* fn_ = nullptr;
  size_t num_tasks_ = 0, next_task_ = 0;
  // Written under mu_; atomic so spinning threads can watch them without the lock.
  std::atomic<size_t> finished_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  int64_t spin_ns_ = 200'000;
};

// Splits [0, n) into ranges of at least `grain` items and runs fn(begin, end) on the pool.
// Like run(), not from inside a pool task.
void parallel_for(size_t n, size_t grain, FunctionRef<void(size_t, size_t)> fn);

// Runs fn(begin, end) over rows [0, rows) that cost about `row_elems` element operations each:
// on the calling thread below ~64K elements in all (waking the pool costs more), otherwise over
// the pool in chunks of ~16K elements. For memory-bound row-wise passes (conversions,
// activations, gathers). Like run(), not from inside a pool task.
void parallel_rows(size_t rows, size_t row_elems, FunctionRef<void(size_t, size_t)> fn);

// Runs fn(i) for i in [0, n), each thread walking its own contiguous share front to back (for
// bandwidth-bound work whose hardware and software prefetch streams want long runs); a thread
// whose share is done takes single items from the back of the fullest other share, so the call
// ends within about one item of balanced. Like run(), not from inside a pool task.
void parallel_for_shares(size_t n, FunctionRef<void(size_t)> fn);

}  // namespace dsinfer
