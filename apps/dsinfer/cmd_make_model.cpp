// dsinfer make-model: writes a random checkpoint of a named shape, with the tokenizer beside it.
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/timer.h"
#include "command.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "tokenizer_files.h"

namespace dsinfer::app {
namespace {

int run(Args& args) {
  std::string preset = args.require("preset");
  std::string out = args.require("out");
  model::RandomCheckpointOptions opt;
  opt.fp8 = args.flag("fp8");
  opt.seed = uint64_t(args.get_int("seed", 0));
  int64_t shard_mb = args.get_int("max-shard-mb", 2048, 1, int64_t(1) << 30);
  std::string tok_dir = args.get_or("tokenizer-dir", "");
  opt.hot_experts = int(args.get_int("hot-experts", 0, 0, 1 << 16));
  args.finish();
  opt.max_shard_bytes = shard_mb << 20;

  model::ModelConfig cfg = model::preset_config(preset);
  double t0 = now_seconds();
  int64_t bytes = model::write_random_checkpoint(cfg, out, opt);
  copy_tokenizer_files(tok_dir, out);
  std::printf("wrote %s (%s%s, %.1f MB of weights) in %.1f s\n", out.c_str(), preset.c_str(), opt.fp8 ? ", fp8" : "",
              double(bytes) / 1e6, now_seconds() - t0);
  return 0;
}

const Registration reg({"make-model", "write a random checkpoint of a named shape (Hugging Face layout)",
                        "--preset tiny-v3|tiny-v2lite|tiny-mla576|bench-v3-small --out DIR [--fp8] [--seed N]\n"
                        "       [--max-shard-mb N] [--tokenizer-dir DIR]\n"
                        "       [--hot-experts K]   (the last K experts of every MoE layer routed to by nearly every token)",
                        run});

}  // namespace
}  // namespace dsinfer::app
