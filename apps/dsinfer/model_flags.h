// Flags shared by the commands that run the model.
#pragma once

#include <string>

#include "base/error.h"
#include "args.h"
#include "model/deepseek.h"
#include "model/forward_options.h"

namespace dsinfer::app {

inline model::Precision parse_precision(const std::string& s) {
  if (s == "fp32") return model::Precision::kFp32;
  if (s == "default") return model::Precision::kDefault;
  fail("--precision must be fp32 or default, got '", s, "'");
}

// --kv-cache-dtype: the latent cache's storage at serving precision.
inline bool parse_fp8_kv_cache(const std::string& s) {
  if (s == "bf16") return false;
  if (s == "fp8") return true;
  fail("--kv-cache-dtype must be bf16 or fp8, got '", s, "'");
}

// --precision and --kv-cache-dtype, as every command that runs the model takes them.
inline model::ModelOptions model_options(Args& args) {
  model::ModelOptions opt;
  opt.precision = parse_precision(args.get_or("precision", "default"));
  opt.fp8_kv_cache = parse_fp8_kv_cache(args.get_or("kv-cache-dtype", "bf16"));
  // The NaN/Inf scan of the weights at load (model/finite_check.h); its cost is in
  // docs/benchmarks.md.
  opt.check_weights = !args.flag("no-weight-check");
  return opt;
}

inline model::AttentionMode parse_attention_mode(const std::string& s) {
  if (s == "auto") return model::AttentionMode::kAuto;
  if (s == "absorbed") return model::AttentionMode::kAbsorbed;
  if (s == "non-absorbed") return model::AttentionMode::kNonAbsorbed;
  fail("--attention must be auto, absorbed or non-absorbed, got '", s, "'");
}

}  // namespace dsinfer::app
