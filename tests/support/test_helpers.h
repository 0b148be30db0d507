// Helpers several test binaries share: a tiny random checkpoint written once per binary and
// seed, the real DeepSeek-V3 tokenizer, and waiting for a condition with a deadline.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/timer.h"
#include "scratch.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace dsinfer::testing {

// A random checkpoint of `preset` (tokenizer files beside it) under the test temp dir, made the
// first time and reused (by later runs too: the name carries the generator's layout version);
// ctest runs binaries in parallel, so it is written privately and published with one rename.
// `tag` keeps differently made checkpoints apart.
inline std::string tiny_checkpoint(const std::string& preset, const model::RandomCheckpointOptions& opt,
                                   const std::string& tag) {
  std::string dir = ::testing::TempDir() + "/dsinfer-" + tag + "-" + preset + "-l" +
                    std::to_string(model::kRandomCheckpointLayout);
  if (!std::filesystem::exists(dir + "/config.json")) {
    std::string tmp = dir + ".tmp." + std::to_string(::getpid());
    model::write_random_checkpoint(model::preset_config(preset), tmp, opt);
    std::error_code ec;
    std::filesystem::rename(tmp, dir, ec);
    if (ec) std::filesystem::remove_all(tmp);  // another process published it first
  }
  return dir;
}

inline std::string tiny_checkpoint(const std::string& preset, uint64_t seed, const std::string& tag) {
  model::RandomCheckpointOptions opt;
  opt.seed = seed;
  return tiny_checkpoint(preset, opt, tag);
}

// DeepSeek-V3's real tokenizer from assets/, loaded once per test binary.
inline const tokenizer::Tokenizer& deepseek_v3_tokenizer() {
  static const tokenizer::Tokenizer t =
      tokenizer::Tokenizer::from_dir(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3");
  return t;
}

// A prompt of n ordinary token ids (no specials), different for each salt: the engine tests'.
inline std::vector<int32_t> prompt_of(int64_t n, int32_t salt) {
  std::vector<int32_t> p;
  for (int64_t i = 0; i < n; ++i) p.push_back(int32_t(100 + (i * 7919 + salt * 104729) % 120000));
  return p;
}

// Polls f until it holds or timeout_s passes; returns its last value.
inline bool eventually(const std::function<bool()>& f, double timeout_s = 10) {
  const double end = now_seconds() + timeout_s;
  while (now_seconds() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

}  // namespace dsinfer::testing
