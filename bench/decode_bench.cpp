// End-to-end batch-1 decode: tokens/s and the weight bytes each token reads, next to this
// machine's streaming-read bandwidth measured in the same run. The bandwidth bound of decode is
// stream_gbps / bytes_per_token; the ratio to it says how close the model runs to the memory.
//   decode_bench --model DIR [--tokens N] [--precision fp32|default]   (--smoke: tiny model, few tokens)
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

using namespace dsinfer;

int main(int argc, char** argv) {
  bool smoke = bench::smoke_mode(argc, argv);
  std::string dir;
  int tokens = smoke ? 4 : 64;
  model::Precision precision = model::Precision::kDefault;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--model") && i + 1 < argc) dir = argv[++i];
    else if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--precision") && i + 1 < argc)
      precision = !std::strcmp(argv[++i], "fp32") ? model::Precision::kFp32 : model::Precision::kDefault;
  }
  if (dir.empty()) {
    if (!smoke) {
      std::fprintf(stderr, "usage: decode_bench --model DIR [--tokens N] [--precision fp32|default] | --smoke\n");
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
  auto m = model::DeepSeekModel::load(dir, mo);
  const auto& cfg = m->config();
  const int prompt = 8;
  cache::KvPool pool(cfg.num_hidden_layers, cfg.latent_dim(), m->cache_dtype(), (prompt + tokens + 63) / 64 + 1);
  std::vector<int32_t> table;
  pool.allocate(pool.blocks_for(prompt + tokens), table);
  std::vector<float> logits(size_t(cfg.vocab_size) * prompt);
  std::vector<int32_t> ids;
  for (int i = 0; i < prompt; ++i) ids.push_back(int32_t((i * 7919 + 3) % cfg.vocab_size));
  model::Batch b;
  b.add(ids.data(), prompt, 0, table.data(), false);
  double t0 = now_seconds();
  m->forward(b, pool.view(), logits.data());
  double prefill_s = now_seconds() - t0;
  int32_t next = kernels::argmax(logits.data(), cfg.vocab_size);
  std::vector<double> step_s;
  for (int t = 0; t < tokens; ++t) {
    model::Batch d;
    d.add(&next, 1, prompt + t, table.data(), false);
    double s0 = now_seconds();
    m->forward(d, pool.view(), logits.data());
    step_s.push_back(now_seconds() - s0);
    next = kernels::argmax(logits.data(), cfg.vocab_size);
  }
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
  return 0;
}
