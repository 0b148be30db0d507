// A fixed pool of worker threads for data-parallel loops. Kernels split their work into
// chunks whose boundaries depend only on the problem size (never on timing), so results are
// bit-identical from run to run and independent of the thread count where the kernel promises it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dsinfer {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Runs fn(task) for task in [0, num_tasks), spread over the pool and the calling thread.
  // Returns when all tasks are done. Not reentrant: a task must not call run() again.
  void run(size_t num_tasks, const std::function<void(size_t)>& fn);

  // The process-wide pool, sized by DSINFER_THREADS or the hardware concurrency.
  static ThreadPool& global();

 private:
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one run() at a time when several threads share the pool
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t num_tasks_ = 0, next_task_ = 0, finished_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

// Splits [0, n) into ranges of at least `grain` items and runs fn(begin, end) on the pool.
void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

}  // namespace dsinfer
