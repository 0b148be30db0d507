// End-to-end decode: tokens/s and the weight bytes each token reads, next to this machine's
// streaming-read bandwidth measured in the same run. The bandwidth bound of batch-1 decode is
// stream_gbps / bytes_per_token; the ratio to it says how close the model runs to the memory.
// With --batch B, B sequences also decode together and the step is compared with batch 1 in the
// same run: how much batching pays on this machine, without the HTTP server in the way; its
// arithmetic rate is compared with the fp32 FMA peak of the kernel path in use. With --prefill P,
// one P-token prompt is prefilled (median of 3) and its GFLOP/s compared with that peak too.
//   decode_bench --model DIR [--tokens N] [--batch B] [--prefill P] [--precision fp32|default]
//                [--kv-cache-dtype bf16|fp8]
//   (--smoke: tiny model, few tokens)
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "base/timer.h"
#include "cache/kv_pool.h"
#include "kernels/sampling.h"
#include "machine_limits.h"
#include "model/deepseek.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "plan/cost_model.h"

using namespace dsinfer;

int main(int argc, char** argv) {
  bool smoke = bench::smoke_mode(argc, argv);
  std::string dir;
  int tokens = smoke ? 4 : 64;
  int batch = smoke ? 4 : 1;
  int prefill_tokens = smoke ? 32 : 0;
  bool fp8_kv = false;
  model::Precision precision = model::Precision::kDefault;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--model") && i + 1 < argc) dir = argv[++i];
    else if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--prefill") && i + 1 < argc) prefill_tokens = std::max(0, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--kv-cache-dtype") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v != "fp8" && v != "bf16") return std::fprintf(stderr, "--kv-cache-dtype must be bf16 or fp8\n"), 2;
      fp8_kv = v == "fp8";
    } else if (!std::strcmp(argv[i], "--precision") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v != "fp32" && v != "default") return std::fprintf(stderr, "--precision must be fp32 or default\n"), 2;
      precision = v == "fp32" ? model::Precision::kFp32 : model::Precision::kDefault;
    }
  }
  if (dir.empty()) {
    if (!smoke) {
      std::fprintf(stderr, "usage: decode_bench --model DIR [--tokens N] [--batch B] [--prefill P] [--precision fp32|default] [--kv-cache-dtype bf16|fp8] | --smoke\n");
      return 2;
    }
    dir = (std::filesystem::temp_directory_path() / "dsinfer-decode-bench-tiny").string();
    model::RandomCheckpointOptions opt;
    opt.fp8 = true;
    model::write_random_checkpoint(model::preset_config("tiny-v3"), dir, opt);
  }
  bench::MachineLimits lim = bench::measure_machine_limits(smoke ? (size_t(64) << 20) : (size_t(1) << 30), smoke ? 3 : 7);
  model::ModelOptions mo;
  mo.precision = precision;
  mo.fp8_kv_cache = fp8_kv;
  auto m = model::DeepSeekModel::load(dir, mo);
  const auto& cfg = m->config();
  const int prompt = 8;
  const int64_t blocks_per_seq = (prompt + tokens + 63) / 64;
  cache::KvPool pool(m->cache_spec(), std::max(blocks_per_seq * (batch + 1), int64_t(prefill_tokens + 63) / 64) + 1);
  std::vector<float> logits(size_t(cfg.vocab_size) * std::max(prompt, batch));

  // Decodes `n` sequences together for `tokens` steps after an 8-token prompt each; returns the
  // per-step times. Sequence i's prompt differs by i so the routes differ as in real traffic.
  double prefill_s = 0;
  auto decode = [&](int n) {
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(n));
    std::vector<int32_t> next(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      pool.allocate(pool.blocks_for(prompt + tokens), tables[size_t(i)]);
      std::vector<int32_t> ids;
      for (int j = 0; j < prompt; ++j) ids.push_back(int32_t((j * 7919 + 3 + i * 104729) % cfg.vocab_size));
      model::Batch b;
      b.add(ids.data(), prompt, 0, tables[size_t(i)].data(), model::Batch::Logits::kLast);
      double t0 = now_seconds();
      m->forward(b, pool.view(), logits.data());
      if (i == 0) prefill_s = now_seconds() - t0;
      next[size_t(i)] = kernels::argmax(logits.data(), cfg.vocab_size);
    }
    std::vector<double> steps;
    for (int t = 0; t < tokens; ++t) {
      model::Batch d;
      for (int i = 0; i < n; ++i) d.add(&next[size_t(i)], 1, prompt + t, tables[size_t(i)].data(), model::Batch::Logits::kLast);
      double s0 = now_seconds();
      m->forward(d, pool.view(), logits.data());
      steps.push_back(now_seconds() - s0);
      for (int i = 0; i < n; ++i) next[size_t(i)] = kernels::argmax(logits.data() + size_t(i) * size_t(cfg.vocab_size), cfg.vocab_size);
    }
    for (auto& t : tables) pool.release(t);
    return steps;
  };
  std::vector<double> step_s = decode(1);
  // The first steps fault in the mapped weights; the median is the steady state.
  double med = bench::median(step_s);
  double bytes = m->weights().bytes_per_token(cfg);
  double tps = 1.0 / med, gbps = bytes * tps / 1e9, bound = lim.stream_read_gbps * 1e9 / bytes;
  std::printf("%s\n", bench::describe(lim).c_str());
  std::printf("model %s (%s), prefill %d tokens in %.3f s, decode %d tokens\n", dir.c_str(),
              cfg.quant ? "fp8" : "bf16", prompt, prefill_s, tokens);
  std::printf("decode: %.2f tok/s (median step %.2f ms), %.1f MB weights/token, %.2f GB/s = %.0f%% of streaming read; "
              "bandwidth bound %.2f tok/s\n",
              tps, med * 1e3, bytes / 1e6, gbps, 100 * gbps / lim.stream_read_gbps, bound);
  bench::LimitProbe probe(size_t(64) << 20);
  if (batch > 1) {
    // The FMA peak measured right before and after the batched steps (this VM's peak moves
    // with its neighbours' load; the start-of-run figure alone gave ratios above 100%).
    const double fma_before = probe.fma_gflops();
    double med_b = bench::median(decode(batch));
    const double fma_around = 0.5 * (fma_before + probe.fma_gflops());
    std::printf("decode at batch %d: %.2f tok/s (median step %.2f ms) = %.2fx batch 1's tokens/s; "
                "the step costs %.2fx a batch-1 step\n",
                batch, batch / med_b, med_b * 1e3, batch / med_b * med, med_b / med);
    const double gflops = plan::decode_step_flops(cfg, batch, prompt + tokens / 2.0) / med_b / 1e9;
    std::printf("decode at batch %d: %.1f GFLOP/s = %.0f%% of the fp32 FMA peak (%.1f GFLOP/s measured before and "
                "after, %s)\n",
                batch, gflops, 100 * gflops / fma_around, fma_around, lim.isa.c_str());
  }
  if (prefill_tokens > 0) {
    // One prompt, logits for its last token only, as the engine prefills; each run paired with
    // an FMA loop measured right before and after it.
    std::vector<int32_t> ids, table;
    for (int j = 0; j < prefill_tokens; ++j) ids.push_back(int32_t((j * 7919 + 11) % cfg.vocab_size));
    pool.allocate(pool.blocks_for(prefill_tokens), table);
    const double flops = plan::prefill_flops(cfg, prefill_tokens);
    bench::Paired r = bench::paired_runs(
        smoke ? 1 : 3, [&] { return probe.fma_gflops(); },
        [&] {
          model::Batch b;
          b.add(ids.data(), prefill_tokens, 0, table.data(), model::Batch::Logits::kLast);
          const double t0 = now_seconds();
          m->forward(b, pool.view(), logits.data());
          return flops / (now_seconds() - t0) / 1e9;
        });
    pool.release(table);
    std::printf("prefill %d tokens: %.2f s, %.0f tokens/s, %.1f GFLOP/s = %.0f%% of the fp32 FMA peak (%.1f GFLOP/s "
                "measured around each run, %s)\n",
                prefill_tokens, flops / r.rate / 1e9, prefill_tokens / (flops / r.rate / 1e9), r.rate, 100 * r.ratio,
                r.limit, lim.isa.c_str());
  }
  return 0;
}
