// Scratch buffers grow to the largest request seen and are then reused, so the steady state of
// the forward pass and its kernels allocates nothing.
#pragma once

#include <cstddef>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/thread_pool.h"

namespace dsinfer {

template <typename T, typename Count>
void grow(std::vector<T>& v, Count n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
}

// The same for 64-byte-aligned scratch; growing does not keep the old contents.
template <typename T, typename Count>
void grow(AlignedBuffer<T>& b, Count n) {
  if (b.size() < size_t(n)) b.resize(size_t(n));
}

// Scratch for the tasks of a parallel kernel: one slot per thread of the global pool, all grown
// by the calling thread before the tasks start, and each task using its thread's slot
// (ThreadPool::worker_index()). A worker-side thread_local would instead be sized by whichever
// worker first ran a large task, so a step after the warm-up could still allocate on a worker
// that had not.
template <typename T>
class WorkerSlots {
 public:
  // Every slot holds at least n elements afterwards (contents not kept when one grows).
  void grow_each(size_t n) {
    if (slots_.empty()) slots_.resize(size_t(ThreadPool::global().size()));
    for (auto& s : slots_) grow(s, n);
  }
  // The running thread's slot; inside a task, after grow_each.
  T* mine() { return slots_[ThreadPool::worker_index()].data(); }

 private:
  std::vector<AlignedBuffer<T>> slots_;
};

}  // namespace dsinfer
