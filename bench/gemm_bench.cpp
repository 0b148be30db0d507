// GEMM benchmarks for the target table, each beside this machine's limits measured in the
// same run: the decode GEMV (m = 1, FP8 and BF16 weights) as GB/s of weights streamed against
// the streaming-read bandwidth, the FP8/BF16 GEMMs at m >= 256 and the contiguous grouped GEMM
// (64 experts, 8 per token, 512 tokens, bench-v3-small's expert shapes) as GFLOP/s against the
// fp32 FMA peak (the kernels run fp32 FMAs: on this CPU they out-run vdpbf16ps 2:1).
// GEMV weights rotate over enough copies to exceed the last-level cache, so they come from DRAM.
// Each run of a kernel is paired with measurements of its limit taken just before and just after it (a 1 GiB
// streaming read, or a ~2 ms FMA loop), and the percentages printed are medians of those paired
// ratios: on this shared VM that cancels the neighbours' load, which moves either figure alone by
// +-20% from one second to the next.
#include <algorithm>
#include <cstring>
#include <ctime>
#include <cstdio>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "base/thread_pool.h"
#include "base/timer.h"
#include "kernels/gemm.h"
#include "machine_limits.h"

using namespace dsinfer;
using namespace dsinfer::kernels;

namespace {

struct Source {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightView view;
};

Source make_weight(int64_t n, int64_t k, DType dtype, uint32_t seed) {
  Source s;
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, 1);
  s.bytes.resize(size_t(n * k) * dtype_size(dtype));
  if (dtype == DType::kF8E4M3) {
    for (auto& b : s.bytes) b = f32_to_e4m3(d(rng) * 100);
    s.scales.assign(size_t(((n + 127) / 128) * ((k + 127) / 128)), 0.01f);
  } else {
    uint16_t* p = reinterpret_cast<uint16_t*>(s.bytes.data());
    for (int64_t i = 0; i < n * k; ++i) p[i] = f32_to_bf16(d(rng));
  }
  s.view = {dtype, s.bytes.data(), n, k, s.scales.empty() ? nullptr : s.scales.data(), 128, 128, (k + 127) / 128, 0};
  return s;
}

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// --cpu: time by the process's CPU time divided by the thread count instead of the wall clock,
// so that A/B comparisons of kernels survive other processes time-slicing the cores. The limits
// stay wall-clock, so under --cpu no ratio is printed: compare those runs with each other.
bool g_cpu_time = false;
bool g_hot = false;
// "xx.x%" of the paired limit, or a blank of the same width under --cpu (different clocks).
std::string percent(const bench::Paired& p) {
  char buf[32];
  if (g_cpu_time) std::snprintf(buf, sizeof buf, "  n/a");
  else std::snprintf(buf, sizeof buf, "%5.1f", 100 * p.ratio);
  return buf;
}

double clock_seconds() {
  if (!g_cpu_time) return now_seconds();
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec)) / double(ThreadPool::global().size());
}

}  // namespace

int main(int argc, char** argv) {
  const bool smoke = bench::smoke_mode(argc, argv);
  bench::MachineLimits lim = bench::measure_machine_limits(smoke ? (size_t(64) << 20) : (size_t(1) << 30), smoke ? 3 : 7);
  std::printf("%s\n", bench::describe(lim).c_str());
  const int reps = smoke ? 2 : 9;
  // --only gemv|gemm|grouped runs one section (quicker re-runs on a shared machine).
  // --grouped-tokens N sets the grouped section's token count (32 is a batch-32 decode step).
  const char* only = nullptr;
  int64_t grouped_tokens = smoke ? 64 : 512;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
    else if (!std::strcmp(argv[i], "--grouped-tokens")) grouped_tokens = std::max(1, std::atoi(argv[i + 1]));
  // --gemm-shape M,N,K replaces the GEMM section's shapes (e.g. 32,129280,1024: a batch-32 lm_head).
  std::vector<std::tuple<int64_t, int64_t, int64_t>> custom_shapes;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--gemm-shape")) {
      long m = 0, n = 0, k = 0;
      if (std::sscanf(argv[i + 1], "%ld,%ld,%ld", &m, &n, &k) == 3 && m > 0 && n > 0 && k > 0)
        custom_shapes.emplace_back(m, n, k);
    }
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--cpu")) g_cpu_time = true;
    else if (!std::strcmp(argv[i], "--hot")) g_hot = true;
  auto section = [&](const char* name) { return !only || !std::strcmp(only, name); };

  bench::LimitProbe probe(smoke ? (size_t(32) << 20) : (size_t(1) << 30));
  auto stream = [&] { return probe.stream_read_gbps(); };
  auto fma = [&] { return probe.fma_gflops(); };

  // Decode GEMV: m = 1.
  std::printf("\n== decode GEMV, m = 1 (target >= 80%% of streaming read; each run paired with a stream read)\n");
  std::vector<std::pair<int64_t, int64_t>> shapes = {{1024, 1024}, {2048, 1024}, {4096, 1024}, {7168, 2048}};
  if (smoke) shapes = {{1024, 1024}};
  if (!section("gemv")) shapes.clear();
  for (DType dt : {DType::kF8E4M3, DType::kBF16}) {
    for (auto [n, k] : shapes) {
      Source src = make_weight(n, k, dt, 1);
      const double bytes = double(n * k) * double(dtype_size(dt));
      // As many copies as the 1 GiB stream read it is compared with (4x the 260 MB LLC here).
      size_t copies = smoke ? 2 : size_t(std::max(2.0, double(size_t(1) << 30) / bytes));
      if (g_hot) copies = 1;  // --hot: weights stay in cache, the kernel's compute ceiling
      std::vector<PackedMatrix> w;
      for (size_t c = 0; c < copies; ++c) w.push_back(pack_matrix(src.view));
      auto x = randn(size_t(3 * k), 2);
      std::vector<float> y(size_t(3 * n));
      ActQuant act = dt == DType::kF8E4M3 ? ActQuant::kFp8 : ActQuant::kBf16;
      size_t next = 0;
      // One kernel run of `rows` rows: a pass through every copy, timed whole like the stream
      // read it is compared with.
      auto gemv_rows = [&](int64_t rows) {
        const size_t calls = std::max<size_t>(copies, 8);
        double t0 = clock_seconds();
        for (size_t c = 0; c < calls; ++c) linear(x.data(), rows, k, w[next++ % copies], y.data(), n, act);
        return double(calls) * w[0].bytes() / (clock_seconds() - t0) / 1e9;
      };
      auto gemv = [&] { return gemv_rows(1); };
      gemv();  // warm up
      bench::Paired p = bench::paired_runs(reps, stream, gemv);
      std::printf("gemv %-5s n=%-5ld k=%-5ld  %7.1f us  %6.1f GB/s  = %s%% of streaming read (%.1f GB/s)\n", dtype_name(dt),
                  long(n), long(k), w[0].bytes() / p.rate / 1e3, p.rate, percent(p).c_str(), p.limit);
      // Two and three rows (a token and its MTP drafts, or a batch of 2-3): each run's time over
      // the one-row run beside it. From DRAM the extra rows should cost little; 1.00x is free.
      double cost[2];
      for (int64_t rows : {2, 3}) {
        gemv_rows(rows);
        const bench::Paired r = bench::paired_runs(reps, gemv, [&] { return gemv_rows(rows); });
        cost[rows - 2] = 1 / r.ratio;
      }
      std::printf("     %-5s %-13s rows 2 and 3: %.2fx and %.2fx the one-row time\n", dtype_name(dt), "", cost[0], cost[1]);
    }
  }

  // GEMMs, m >= 256.
  std::printf("\n== GEMM, m >= 256 (target >= 60%% of fp32 FMA peak; each run paired with an FMA loop)\n");
  std::vector<std::tuple<int64_t, int64_t, int64_t>> gshapes = {std::tuple<int64_t, int64_t, int64_t>{256, 1024, 1024}, {512, 2048, 1024}, {512, 1024, 4096}};
  if (smoke) gshapes = {std::tuple<int64_t, int64_t, int64_t>{256, 256, 256}};
  if (!custom_shapes.empty()) gshapes = custom_shapes;
  if (!section("gemm")) gshapes.clear();
  for (DType dt : {DType::kF8E4M3, DType::kBF16}) {
    for (auto [m, n, k] : gshapes) {
      Source src = make_weight(n, k, dt, 3);
      PackedMatrix w = pack_matrix(src.view);
      auto x = randn(size_t(m * k), 4);
      std::vector<float> y(size_t(m * n));
      const int64_t kb = k_blocks(k);
      std::vector<uint8_t> qa(size_t(m * k));
      std::vector<float> sa(size_t(m * kb));
      std::vector<uint16_t> xb(size_t(m * k));
      for (size_t i = 0; i < xb.size(); ++i) xb[i] = f32_to_bf16(x[i]);
      quantize_fp8_1x128(x.data(), m, k, k, false, qa.data(), sa.data());
      const double flops = 2.0 * double(m * n * k);
      auto gemm = [&] {
        double t0 = clock_seconds();
        if (dt == DType::kF8E4M3) gemm_fp8_nt(qa.data(), k, sa.data(), m, w, y.data(), n);
        else gemm_bf16_nt(xb.data(), k, m, w, y.data(), n);
        return flops / (clock_seconds() - t0) / 1e9;
      };
      gemm();  // warm up
      bench::Paired p = bench::paired_runs(reps, fma, gemm);
      std::printf("gemm %-5s m=%-4ld n=%-5ld k=%-5ld %8.2f ms  %6.1f GFLOP/s = %s%% of FMA peak (%.1f GFLOP/s)\n", dtype_name(dt),
                  long(m), long(n), long(k), flops / p.rate / 1e6, p.rate, percent(p).c_str(), p.limit);
    }
  }

  // Grouped contiguous: 512 tokens x 8 experts of 64, bench-v3-small experts (hidden 1024,
  // moe_intermediate 512): gate+up fused [1024 -> 1024] then down [512 -> 1024].
  std::printf("\n== grouped GEMM, contiguous layout (target >= 50%% of FMA peak)\n");
  if (section("grouped")) {
    const int64_t E = smoke ? 8 : 64, topk = 8, tokens = grouped_tokens, hidden = 1024, inter = 512;
    // Each layer of a real model has its own experts: cycle through enough copies of the expert
    // set to exceed the last-level cache (260 MB here), unless --hot.
    const size_t sets = smoke || g_hot ? 1 : 8;
    std::vector<Source> gu_src, dn_src;
    for (int64_t e = 0; e < E; ++e) {
      gu_src.push_back(make_weight(2 * inter, hidden, DType::kF8E4M3, uint32_t(10 + e)));
      dn_src.push_back(make_weight(hidden, inter, DType::kF8E4M3, uint32_t(100 + e)));
    }
    std::vector<std::vector<PackedMatrix>> gu(sets), dn(sets);
    std::vector<std::vector<const PackedMatrix*>> gup(sets), dnp(sets);
    for (size_t c = 0; c < sets; ++c) {
      for (int64_t e = 0; e < E; ++e) {
        gu[c].push_back(pack_matrix(gu_src[size_t(e)].view));
        dn[c].push_back(pack_matrix(dn_src[size_t(e)].view));
      }
      for (int64_t e = 0; e < E; ++e) gup[c].push_back(&gu[c][size_t(e)]), dnp[c].push_back(&dn[c][size_t(e)]);
    }
    // Random routing, rows sorted by expert, each group padded to 128 rows (DeepGEMM's alignment).
    std::mt19937 rng(5);
    std::vector<int64_t> count(size_t(E), 0);
    for (int64_t t = 0; t < tokens; ++t) {
      std::vector<int64_t> ids(static_cast<size_t>(E));
      for (int64_t e = 0; e < E; ++e) ids[size_t(e)] = e;
      std::shuffle(ids.begin(), ids.end(), rng);
      for (int64_t j = 0; j < topk; ++j) count[size_t(ids[size_t(j)])]++;
    }
    std::vector<int32_t> idx;
    for (int64_t e = 0; e < E; ++e) {
      for (int64_t r = 0; r < count[size_t(e)]; ++r) idx.push_back(int32_t(e));
      while (idx.size() % 128) idx.push_back(-1);
    }
    const int64_t m = int64_t(idx.size()), valid = tokens * topk;
    auto x = randn(size_t(m * hidden), 6);
    std::vector<float> a(size_t(m * hidden)), sa(size_t(m * k_blocks(hidden))), h(size_t(m * 2 * inter)),
        a2(size_t(m * inter)), sa2(size_t(m * k_blocks(inter))), out(size_t(m * hidden));
    prepare_activations(x.data(), m, hidden, hidden, ActQuant::kFp8, a.data(), sa.data());
    prepare_activations(h.data(), m, inter, 2 * inter, ActQuant::kFp8, a2.data(), sa2.data());
    size_t next = 0;
    const double f1 = 2.0 * double(valid) * double(2 * inter) * double(hidden), f2 = 2.0 * double(valid) * double(inter) * double(hidden);
    std::vector<double> t1s, t2s;
    // One kernel run: gate+up then down on the next expert set.
    auto grouped = [&] {
      const size_t set = next++ % sets;
      double t0 = clock_seconds();
      gemm_grouped_contiguous(a.data(), hidden, sa.data(), m, idx.data(), gup[set].data(), h.data(), 2 * inter);
      double t1 = clock_seconds();
      gemm_grouped_contiguous(a2.data(), inter, sa2.data(), m, idx.data(), dnp[set].data(), out.data(), hidden);
      double t2 = clock_seconds();
      t1s.push_back(t1 - t0);
      t2s.push_back(t2 - t1);
      return (f1 + f2) / (t2 - t0) / 1e9;
    };
    for (size_t c = 0; c < sets; ++c) grouped();  // warm up
    t1s.clear();
    t2s.clear();
    bench::Paired p = bench::paired_runs(reps * int(sets), fma, grouped);
    const double s1 = bench::median(t1s), s2 = bench::median(t2s);
    std::printf("grouped fp8 gate+up  %ld rows (%ld valid) n=%ld k=%ld  %7.2f ms  %6.1f GFLOP/s\n", long(m), long(valid),
                long(2 * inter), long(hidden), s1 * 1e3, f1 / s1 / 1e9);
    std::printf("grouped fp8 down     %ld rows (%ld valid) n=%ld k=%ld   %7.2f ms  %6.1f GFLOP/s\n", long(m), long(valid),
                long(hidden), long(inter), s2 * 1e3, f2 / s2 / 1e9);
    std::printf("grouped fp8 total    %6.1f GFLOP/s = %s%% of FMA peak (%.1f GFLOP/s)\n", p.rate, percent(p).c_str(), p.limit);
  }
  return 0;
}
