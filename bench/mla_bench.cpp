// mla_decode benchmark for the target table: b = 32 sequences, h_q = 16, context 4096,
// V3's latent (576 = 512 + 64 rope, dv 512), bf16 and FP8 latent caches. Prints the cache bytes
// read per second beside the streaming-read bandwidth and the FLOP rate beside the FMA peak, both
// measured in the same run, and the FP8 cache's accuracy against the bf16 cache (relative L2 of
// the attention output, max |lse| difference) on the same random latents. Each percentage is the
// median over runs of the run's rate against the limit measured just before and after it
// (bench/machine_limits.h, LimitProbe): the VM's neighbours move both alike.
#include <cmath>
#include <cstdio>
#include <vector>

#include "base/timer.h"
#include "kernels/attention.h"
#include "machine_limits.h"

using namespace dsinfer;
using namespace dsinfer::kernels;

int main(int argc, char** argv) {
  const bool smoke = bench::smoke_mode(argc, argv);
  bench::MachineLimits lim = bench::measure_machine_limits(smoke ? (size_t(64) << 20) : (size_t(1) << 30), smoke ? 3 : 7);
  std::printf("%s\n", bench::describe(lim).c_str());
  const int64_t B = smoke ? 4 : 32, H = 16, ctx = smoke ? 512 : 4096, d = 576, dv = 512, bs = 64;
  const int64_t blocks_per_seq = (ctx + bs - 1) / bs, blocks = B * blocks_per_seq;
  const int reps = smoke ? 2 : 7;
  bench::LimitProbe probe(smoke ? (size_t(32) << 20) : (size_t(1) << 30));
  std::vector<int32_t> table(static_cast<size_t>(B * blocks_per_seq)), lens(static_cast<size_t>(B), int32_t(ctx));
  for (int64_t i = 0; i < B * blocks_per_seq; ++i) table[size_t(i)] = int32_t((i * 7919) % blocks);  // scattered
  std::vector<float> q(static_cast<size_t>(B * H * d)), row(static_cast<size_t>(d));
  uint64_t s = 1;
  auto rnd = [&] {  // ~N(0,1) via a sum of uniforms; fast and deterministic
    float a = 0;
    for (int i = 0; i < 4; ++i) a += float((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 40) / float(1 << 24);
    return (a - 2.0f) * 1.7f;
  };
  for (auto& x : q) x = rnd() * 0.05f;
  const float scale = 1.0f / std::sqrt(192.0f);

  std::vector<float> out_ref;
  std::vector<float> lse_ref;
  double t_bf16 = 0;
  for (DType dt : {DType::kBF16, DType::kF8E4M3}) {
    LatentCacheView view{nullptr, dt, bs, d, 64};
    std::vector<uint8_t> cache(size_t(blocks * bs * view.row_bytes()));
    view.base = cache.data();
    s = 99;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < ctx; ++t) {
        for (auto& x : row) x = rnd();
        latent_cache_store(view, table.data() + b * blocks_per_seq, t, row.data());
      }
    std::vector<float> out(size_t(B * H * dv)), lse(size_t(B * H));
    auto run = [&] {
      mla_decode(q.data(), B, 1, H, view, table.data(), blocks_per_seq, lens.data(), dv, scale, true, out.data(), lse.data());
    };
    run();
    const double bytes = double(B * ctx * view.row_bytes());
    const double flops = double(B * H * ctx) * double(d + dv) * 2;
    std::vector<double> times;
    auto timed = [&] {
      double t0 = now_seconds();
      run();
      times.push_back(now_seconds() - t0);
      return times.back();
    };
    const bench::Paired pb = bench::paired_runs(reps, [&] { return probe.stream_read_gbps(); }, [&] { return bytes / timed() / 1e9; });
    const bench::Paired pf = bench::paired_runs(reps, [&] { return probe.fma_gflops(); }, [&] { return flops / timed() / 1e9; });
    const double t = bench::median(times);
    std::printf("mla_decode %-5s b=%ld h_q=%ld ctx=%ld  %8.2f ms  %6.1f GB/s = %5.1f%% of streaming read (%.1f GB/s);  "
                "%6.1f GFLOP/s = %5.1f%% of FMA peak (%.1f GFLOP/s)\n",
                dt == DType::kBF16 ? "bf16" : "fp8", long(B), long(H), long(ctx), t * 1e3, bytes / t / 1e9, 100 * pb.ratio,
                pb.limit, flops / t / 1e9, 100 * pf.ratio, pf.limit);
    if (dt == DType::kBF16) {
      out_ref = out;
      lse_ref = lse;
      t_bf16 = t;
    } else {
      double num = 0, den = 0, dl = 0;
      for (size_t i = 0; i < out.size(); ++i) {
        num += (double(out[i]) - out_ref[i]) * (double(out[i]) - out_ref[i]);
        den += double(out_ref[i]) * out_ref[i];
      }
      for (size_t i = 0; i < lse.size(); ++i) dl = std::max(dl, std::fabs(double(lse[i]) - lse_ref[i]));
      std::printf("fp8 latent vs bf16: speed-up %.2fx; output rel L2 %.3e, max |lse diff| %.3e\n", t_bf16 / t,
                  std::sqrt(num / den), dl);
    }
  }
  return 0;
}
