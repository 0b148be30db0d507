// How much memory this machine can still give without swapping: what the KV cache is sized from
// once the weights are loaded and the warm-up has grown every step buffer (as nano-vllm sizes
// its cache from the GPU memory left after a warm-up).
#pragma once

#include <cstdint>

namespace dsinfer {

// MemAvailable from /proc/meminfo (the kernel's estimate of memory available to new work
// without swapping), in bytes; -1 where it cannot be read.
int64_t available_memory_bytes();

}  // namespace dsinfer
