// This machine's own limits, measured in the same run as a benchmark so that every figure it
// prints can be read as a fraction of what the hardware delivered at that moment: a streaming read
// over a large buffer (the bandwidth bound of decode) and an FMA loop (the compute bound of GEMM).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"

namespace dsinfer::bench {

struct MachineLimits {
  double stream_read_gbps = 0;  // all threads, median of repetitions
  double fma_fp32_gflops = 0;   // all threads, fp32 FMA at the vector width of the kernel path in use
  double bf16_dot_gflops = 0;   // all threads, AVX512_BF16 vdpbf16ps (0 when unavailable)
  int threads = 0;
  std::string isa;
};

// bytes: size of the streamed buffer (>= 1 GiB for the published figures; smaller for smoke runs).
MachineLimits measure_machine_limits(size_t bytes, int repetitions);

std::string describe(const MachineLimits& m);

double median(std::vector<double> v);

// A limit measured again right before each run of a kernel: on this shared VM a neighbour's
// load moves a kernel by +-20% from one second to the next, and it moves the limit measured in
// the same second alike, so the ratio of the pair is steadier than either figure.
class LimitProbe {
 public:
  explicit LimitProbe(size_t stream_bytes);  // the streamed buffer, allocated and touched once
  double stream_read_gbps();                 // one pass, the faster of plain and prefetched loads
  double fma_gflops();                       // one all-thread fp32 FMA loop of ~2 ms
 private:
  AlignedBuffer<float> buf_;
};

struct Paired {
  double rate = 0;   // median achieved rate of the kernel
  double limit = 0;  // median of the limits measured beside it
  double ratio = 0;  // median over runs of rate / the limit measured around that run
};

// Runs the kernel `reps` times, measuring the limit before and after each run (and so between
// consecutive runs); each run's ratio is its rate over the mean of the limits either side,
// which also cancels a load that drifts during the run. Rates share one unit.
template <typename Limit, typename Kernel>
Paired paired_runs(int reps, Limit limit, Kernel kernel) {
  std::vector<double> rates, limits, ratios;
  double before = limit();
  for (int r = 0; r < reps; ++r) {
    const double k = kernel();
    const double after = limit();
    const double l = 0.5 * (before + after);
    rates.push_back(k);
    limits.push_back(l);
    ratios.push_back(k / l);
    before = after;
  }
  return {median(rates), median(limits), median(ratios)};
}

// True when argv contains --smoke: run briefly, as CI does.
bool smoke_mode(int argc, char** argv);

}  // namespace dsinfer::bench
