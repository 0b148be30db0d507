// Tiny random checkpoints of the model tests (FP8, sharded), written once per test binary
// through the shared helper (tests/support/test_helpers.h).
#pragma once

#include <cstdint>
#include <string>

#include "model/random_checkpoint.h"
#include "test_helpers.h"

namespace dsinfer::model::testing {

inline std::string tiny_model(const std::string& preset, bool fp8, int64_t max_shard_bytes = int64_t(1) << 40) {
  RandomCheckpointOptions opt;
  opt.fp8 = fp8;
  opt.seed = 7;
  opt.max_shard_bytes = max_shard_bytes;
  const bool sharded = max_shard_bytes < (int64_t(1) << 40);
  return dsinfer::testing::tiny_checkpoint(preset, opt, std::string("model") + (fp8 ? "-fp8" : "") + (sharded ? "-sharded" : ""));
}

}  // namespace dsinfer::model::testing
