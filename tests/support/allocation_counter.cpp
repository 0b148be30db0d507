#include "allocation_counter.h"

#include <execinfo.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace dsinfer::testing {
namespace {

std::atomic<bool> g_open{false};
thread_local bool tl_excluded = false;
std::atomic<int64_t> g_count{0};
bool g_trace = false;

void note_allocation() {
  if (!g_open.load(std::memory_order_relaxed) || tl_excluded) return;
  int64_t n = g_count.fetch_add(1, std::memory_order_relaxed);
  if (g_trace && n < 5) {
    // backtrace() itself must not allocate here: it was primed when the window opened.
    void* frames[32];
    int depth = backtrace(frames, 32);
    static const char kHead[] = "--- allocation inside the window:\n";
    ssize_t rc = write(2, kHead, sizeof kHead - 1);
    (void)rc;
    backtrace_symbols_fd(frames, depth, 2);
  }
}

void* allocate(size_t size) {
  note_allocation();
  void* p = std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void* allocate_aligned(size_t size, std::align_val_t align) {
  note_allocation();
  void* p = nullptr;
  if (posix_memalign(&p, std::max(sizeof(void*), size_t(align)), size ? size : 1) != 0) throw std::bad_alloc();
  return p;
}

}  // namespace

AllocationWindow::AllocationWindow() {
  const char* env = std::getenv("DSINFER_TRACE_ALLOCATIONS");
  g_trace = env && env[0] == '1';
  if (g_trace) {
    void* frames[4];
    backtrace(frames, 4);  // loads libgcc's unwinder now, not inside the window
  }
  g_count = 0;
  g_open = true;
}

AllocationWindow::~AllocationWindow() { g_open = false; }

int64_t AllocationWindow::count() const { return g_count.load(); }

void AllocationWindow::exclude_this_thread() { tl_excluded = true; }

}  // namespace dsinfer::testing

void* operator new(size_t size) { return dsinfer::testing::allocate(size); }
void* operator new[](size_t size) { return dsinfer::testing::allocate(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  try {
    return dsinfer::testing::allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  try {
    return dsinfer::testing::allocate(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(size_t size, std::align_val_t a) { return dsinfer::testing::allocate_aligned(size, a); }
void* operator new[](size_t size, std::align_val_t a) { return dsinfer::testing::allocate_aligned(size, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
