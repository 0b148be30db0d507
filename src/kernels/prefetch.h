// Software prefetch shared by the streaming kernels of every path (__builtin_prefetch is
// prefetcht1/prefetcht0 on x86-64 and prfm on aarch64).
#pragma once

#include <cstddef>
#include <cstdint>

namespace dsinfer::kernels::detail {

// For the paths that read packed panels from memory, in bytes ahead of the row being read.
// Without it one core reached about half its streaming rate: out-of-order execution runs only
// ~1.6 KB ahead of a decode loop that spends ~20 uops per 64-byte FP8 row. Two distances: far
// ahead into L2 (the L2's miss queue holds ~3x as many lines as L1's fill buffers, which had
// capped a T0-only prefetch), near ahead into L1. Measured on a 7168x2048 GEMV (two threads,
// alternating runs, AVX-512): one 4 KB T0 prefetch 18.3 GB/s FP8 / 21.1 BF16; 2 KB T0 + 16 KB T1
// 19.9 / 24.9. Panels of a matrix are contiguous, so near the end of a panel this fetches the
// start of the next one, which the same thread usually takes next. The NEON panel uses the same
// distances, untuned: this project has no ARM hardware to tune them on.
inline constexpr size_t kPrefetchL1Bytes = 2048;
inline constexpr size_t kPrefetchL2Bytes = 16384;

inline void prefetch_row(const uint8_t* row, size_t bytes) {
  for (size_t l = 0; l < bytes; l += 64) {
    __builtin_prefetch(row + kPrefetchL2Bytes + l, 0, 2);
    __builtin_prefetch(row + kPrefetchL1Bytes + l, 0, 3);
  }
}

// prefetch_row's near half alone, for the sweep that reads a block's rows first.
inline void prefetch_row_near(const uint8_t* row, size_t bytes) {
  for (size_t l = 0; l < bytes; l += 64) __builtin_prefetch(row + kPrefetchL1Bytes + l, 0, 3);
}

// Brings a byte range into L2 one line per step(), spread over a tile's arithmetic so the
// prefetches never queue up behind L1's few fill buffers (mla_decode passes the next KV block).
struct PrefetchCursor {
  const uint8_t* p = nullptr;
  const uint8_t* end = nullptr;
  void step() {
    if (p < end) {
      __builtin_prefetch(p, 0, 2);
      p += 64;
    }
  }
};

// The far half of prefetch_row for a kernel that sweeps each block of rows several times (the
// AVX2 GEMV with more than one row: one half of each row per sweep, the later sweeps from L1):
// a cursor over sweep `sweep`'s contiguous share (of `sweeps`) of the lines prefetch_row would
// have fetched for the block of `rows` rows of `row_bytes` at `block`. Issued by the first sweep
// alone, the DRAM stream stopped through the others and two BF16 rows took 1.29-1.34x one row's
// time from DRAM (docs/benchmarks.md). One line a step behind one predictable branch: a loop of
// several per step cost in-cache GEMVs a third of their time.
inline PrefetchCursor far_prefetch_share(const uint8_t* block, size_t rows, size_t row_bytes, size_t sweep,
                                         size_t sweeps) {
  const size_t lines = (rows * row_bytes + 63) / 64;
  return {block + kPrefetchL2Bytes + 64 * (lines * sweep / sweeps), block + kPrefetchL2Bytes + 64 * (lines * (sweep + 1) / sweeps)};
}

}  // namespace dsinfer::kernels::detail
