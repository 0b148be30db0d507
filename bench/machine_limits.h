// This machine's own limits, measured in the same run as a benchmark so that every figure it
// prints can be read as a fraction of what the hardware delivered at that moment: a streaming read
// over a large buffer (the bandwidth bound of decode) and an FMA loop (the compute bound of GEMM).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace dsinfer::bench {

struct MachineLimits {
  double stream_read_gbps = 0;  // all threads, median of repetitions
  double fma_fp32_gflops = 0;   // all threads, fp32 FMA on the widest vectors compiled in
  double bf16_dot_gflops = 0;   // all threads, AVX512_BF16 vdpbf16ps (0 when unavailable)
  int threads = 0;
  std::string isa;
};

// bytes: size of the streamed buffer (>= 1 GiB for the published figures; smaller for smoke runs).
MachineLimits measure_machine_limits(size_t bytes, int repetitions);

std::string describe(const MachineLimits& m);

double median(std::vector<double> v);

// True when argv contains --smoke: run briefly, as CI does.
bool smoke_mode(int argc, char** argv);

}  // namespace dsinfer::bench
