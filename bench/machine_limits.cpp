#include "machine_limits.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/simd.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "kernels/cpu_features.h"

namespace dsinfer::bench {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool smoke_mode(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--smoke")) return true;
  return false;
}

// Sums p[0, n) with the vector width of the kernel path in use (kernels/cpu_features.h). With
// `prefetch`, each 256-byte step also asks for the lines 4 KB (into L1) and 32 KB (into L2)
// ahead: on this VM that reads ~20% faster than plain loads (the best of the distances tried,
// 2-8 KB / 16-64 KB), and the limit a kernel is compared with should be the faster of the two.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float sum_range_avx512(const float* p, size_t n, bool prefetch) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    if (prefetch)
      for (int l = 0; l < 4; ++l) {
        _mm_prefetch(reinterpret_cast<const char*>(p + i + 8192 + 16 * l), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(p + i + 1024 + 16 * l), _MM_HINT_T0);
      }
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  float s = hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; ++i) s += p[i];
  return s;
}

__attribute__((target("avx2"))) static float sum_range_avx2(const float* p, size_t n, bool prefetch) {
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    if (prefetch)
      for (int l = 0; l < 4; ++l) {
        _mm_prefetch(reinterpret_cast<const char*>(p + i + 8192 + 16 * l), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(p + i + 1024 + 16 * l), _MM_HINT_T0);
      }
    for (int j = 0; j < 8; ++j) a[j] = _mm256_add_ps(a[j], _mm256_load_ps(p + i + 8 * j));
  }
  for (int j = 1; j < 8; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
  float s = hsum(a[0]);
  for (; i < n; ++i) s += p[i];
  return s;
}
#endif

static float sum_range_generic(const float* p, size_t n, bool) {
  float s[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) s[j] += p[i + j];
  for (; i < n; ++i) s[0] += p[i];
  float t = 0;
  for (float v : s) t += v;
  return t;
}

static float sum_range(const float* p, size_t n, bool prefetch) {
#if defined(__x86_64__)
  if (kernels::active_isa() == kernels::Isa::kAvx512) return sum_range_avx512(p, n, prefetch);
  if (kernels::active_isa() == kernels::Isa::kAvx2) return sum_range_avx2(p, n, prefetch);
#endif
  return sum_range_generic(p, n, prefetch);
}

// One pass over buf on every thread; GB/s.
static double stream_pass(const AlignedBuffer<float>& buf, bool prefetch) {
  const size_t n = buf.size() / 64 * 64;
  ThreadPool& pool = ThreadPool::global();
  const size_t chunks = size_t(pool.size());
  const size_t per = (n / chunks) / 64 * 64;
  std::atomic<float> sink{0};
  const double t0 = now_seconds();
  pool.run(chunks, [&](size_t c) {
    size_t b = c * per, e = c + 1 == chunks ? n : b + per;
    float s = sum_range(buf.data() + b, e - b, prefetch);
    sink.store(sink.load() + s);
  });
  return double(n) * sizeof(float) / (now_seconds() - t0) / 1e9;
}

static AlignedBuffer<float> stream_buffer(size_t bytes) {
  const size_t n = bytes / sizeof(float) / 64 * 64;
  AlignedBuffer<float> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = float(i & 7);
  return buf;
}

static double stream_read(size_t bytes, int reps, bool prefetch) {
  AlignedBuffer<float> buf = stream_buffer(bytes);
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) rates.push_back(stream_pass(buf, prefetch));
  return median(rates);
}

// Independent accumulator chains hide the FMA latency; 2 FLOPs per lane per FMA. The peak is
// that of the kernel path in use: AVX2's 8 lanes under DSINFER_ISA=avx2 on an AVX-512 machine.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double fma_loop_avx512(long iters, float* out) {
  __m512 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_ps(float(j));
  __m512 m = _mm512_set1_ps(0.9999f), a = _mm512_set1_ps(1e-4f);
  double t0 = now_seconds();
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_fmadd_ps(acc[j], m, a);
  double dt = now_seconds() - t0;
  for (int j = 1; j < 12; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  *out = hsum(acc[0]);
  return dt;
}

__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iters, float* out) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(float(j));
  __m256 m = _mm256_set1_ps(0.9999f), a = _mm256_set1_ps(1e-4f);
  double t0 = now_seconds();
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], m, a);
  double dt = now_seconds() - t0;
  for (int j = 1; j < 12; ++j) acc[0] = _mm256_add_ps(acc[0], acc[j]);
  *out = hsum(acc[0]);
  return dt;
}
#endif

// Generic: 4 lanes of 12 chains, what a compiler makes of plain code (SSE or NEON width).
static double fma_loop_generic(long iters, float* out) {
  float acc[12][4];
  for (int j = 0; j < 12; ++j)
    for (float& v : acc[j]) v = float(j);
  double t0 = now_seconds();
  for (long i = 0; i < iters; ++i)
    for (auto& chain : acc)
      for (float& v : chain) v = v * 0.9999f + 1e-4f;
  double dt = now_seconds() - t0;
  *out = acc[0][0];
  return dt;
}

static double fma_loop_seconds(long iters, float* out) {
#if defined(__x86_64__)
  if (kernels::active_isa() == kernels::Isa::kAvx512) return fma_loop_avx512(iters, out);
  if (kernels::active_isa() == kernels::Isa::kAvx2) return fma_loop_avx2(iters, out);
#endif
  return fma_loop_generic(iters, out);
}

static int lanes() {
  const kernels::Isa isa = kernels::active_isa();
  return isa == kernels::Isa::kAvx512 ? 16 : isa == kernels::Isa::kAvx2 ? 8 : 4;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bf16"))) static double bf16_loop_seconds(long iters, float* out) {
  __m512 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm512_setzero_ps();
  __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3c00);
  double t0 = now_seconds();
  for (long i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], x, y);
  double dt = now_seconds() - t0;
  for (int j = 1; j < 12; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  *out = hsum(acc[0]);
  return dt;
}
#endif

// Runs `loop` on every thread at once and returns the aggregate GFLOP/s (median of reps).
template <typename Loop>
static double all_threads_gflops(Loop loop, long iters, double flops_per_iter, int reps) {
  ThreadPool& pool = ThreadPool::global();
  size_t threads = size_t(pool.size());
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> secs(threads);
    std::vector<float> sink(threads);
    pool.run(threads, [&](size_t t) { secs[t] = loop(iters, &sink[t]); });
    double slowest = *std::max_element(secs.begin(), secs.end());
    rates.push_back(double(threads) * double(iters) * flops_per_iter / slowest / 1e9);
  }
  return median(rates);
}

MachineLimits measure_machine_limits(size_t bytes, int repetitions) {
  MachineLimits m;
  m.threads = ThreadPool::global().size();
  m.stream_read_gbps = std::max(stream_read(bytes, repetitions, false), stream_read(bytes, repetitions, true));
  long iters = bytes >= (size_t(1) << 30) ? 20'000'000 : 2'000'000;
  m.fma_fp32_gflops = all_threads_gflops(fma_loop_seconds, iters, 12.0 * lanes() * 2, repetitions);
  m.isa = kernels::isa_name(kernels::active_isa());
#if defined(__x86_64__)
  if (kernels::active_isa() == kernels::Isa::kAvx512 && __builtin_cpu_supports("avx512bf16")) {
    // vdpbf16ps: 32 bf16 products summed pairwise into 16 fp32 lanes = 64 FLOPs per instruction.
    m.bf16_dot_gflops = all_threads_gflops(bf16_loop_seconds, iters, 12.0 * 64, repetitions);
    m.isa += "+bf16";
  }
#endif
  return m;
}

LimitProbe::LimitProbe(size_t stream_bytes) : buf_(stream_buffer(stream_bytes)) {}

double LimitProbe::stream_read_gbps() { return std::max(stream_pass(buf_, false), stream_pass(buf_, true)); }

double LimitProbe::fma_gflops() {
  return all_threads_gflops(fma_loop_seconds, 1'000'000, 12.0 * lanes() * 2, 1);
}

std::string describe(const MachineLimits& m) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "machine: %d threads, %s; streaming read %.1f GB/s; fp32 FMA %.1f GFLOP/s; bf16 dot %.1f GFLOP/s",
                m.threads, m.isa.c_str(), m.stream_read_gbps, m.fma_fp32_gflops, m.bf16_dot_gflops);
  return buf;
}

}  // namespace dsinfer::bench
