// Tiny random checkpoints written once per test binary into the test temp dir.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace dsinfer::model::testing {

inline std::string tiny_model(const std::string& preset, bool fp8, int64_t max_shard_bytes = int64_t(1) << 40) {
  std::string dir = ::testing::TempDir() + "/dsinfer-" + preset + (fp8 ? "-fp8" : "") +
                    (max_shard_bytes < (int64_t(1) << 40) ? "-sharded" : "");
  if (!std::filesystem::exists(dir + "/config.json")) {
    // ctest runs tests in parallel processes: write privately, then publish with one rename.
    std::string tmp = dir + ".tmp." + std::to_string(::getpid());
    RandomCheckpointOptions opt;
    opt.fp8 = fp8;
    opt.seed = 7;
    opt.max_shard_bytes = max_shard_bytes;
    write_random_checkpoint(preset_config(preset), tmp, opt);
    std::error_code ec;
    std::filesystem::rename(tmp, dir, ec);
    if (ec) std::filesystem::remove_all(tmp);  // another process published it first
  }
  return dir;
}

}  // namespace dsinfer::model::testing
