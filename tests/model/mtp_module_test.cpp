// The MTP module (DeepSeekModel::forward_mtp) on every preset's random checkpoint: make-model
// writes the module as V3 stores it, the loader takes it when asked, and the module reads its own
// KV layer back: a prompt run through it in two chunks gives the logits of one chunk.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "cache/kv_pool.h"
#include "model/deepseek.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "test_helpers.h"

namespace dsinfer::model {
namespace {

// The main model over `tokens` in one prefill, then the module over positions [0, n - 1) in
// chunks of `chunk`: every MTP row's logits [n - 1, V].
std::vector<float> mtp_logits(DeepSeekModel& m, const std::vector<int32_t>& tokens, int64_t chunk) {
  const int64_t n = int64_t(tokens.size()), V = m.config().vocab_size;
  cache::KvPool pool(m.cache_spec(), 4);
  std::vector<int32_t> table = {0, 1, 2, 3};
  std::vector<float> last(static_cast<size_t>(V)), out(static_cast<size_t>((n - 1) * V));
  Batch main;
  main.add(tokens.data(), n, 0, table.data(), Batch::Logits::kLast, false);
  m.forward(main, pool.view(), last.data());
  // forward_mtp replaces the kept states with its own: a later chunk needs the main model's
  // states again, so the main forward is rerun (same rows, same bits) before each chunk.
  for (int64_t from = 0; from < n - 1; from += chunk) {
    const int64_t len = std::min(chunk, n - 1 - from);
    if (from > 0) m.forward(main, pool.view(), last.data());
    Batch b;
    b.add(tokens.data() + from + 1, len, from, table.data(), Batch::Logits::kAll, false);
    std::vector<int64_t> rows(static_cast<size_t>(len));
    for (int64_t i = 0; i < len; ++i) rows[size_t(i)] = from + i;
    m.forward_mtp(b, rows.data(), pool.view(), out.data() + from * V);
  }
  return out;
}

TEST(MtpModule, EveryPresetWritesAndLoadsItAndItReadsItsOwnCache) {
  for (const std::string& preset : preset_names()) {
    if (preset == "bench-v3-small") continue;  // GBs; its layout is tiny-v3's
    const std::string dir = dsinfer::testing::tiny_checkpoint(preset, 5, "mtp");
    ModelOptions opt;
    opt.precision = Precision::kFp32;
    opt.mtp = true;
    auto m = DeepSeekModel::load(dir, opt);
    const ModelConfig& cfg = m->config();
    ASSERT_TRUE(m->has_mtp()) << preset;
    EXPECT_EQ(m->cache_layers(), cfg.num_hidden_layers + 1) << preset;
    EXPECT_EQ(m->weights().layers.size(), size_t(cfg.num_hidden_layers + 1)) << preset;
    EXPECT_EQ(m->weights().layers.back().is_moe, cfg.is_moe_layer(cfg.num_hidden_layers)) << preset;
    EXPECT_EQ(m->weights().skipped_mtp_tensors, 0) << preset;
    std::vector<int32_t> tokens;
    for (int i = 0; i < 40; ++i) tokens.push_back(int32_t((i * 7919 + 11) % cfg.vocab_size));
    const std::vector<float> whole = mtp_logits(*m, tokens, 39), parts = mtp_logits(*m, tokens, 13);
    double num = 0, den = 0;
    for (size_t i = 0; i < whole.size(); ++i) {
      ASSERT_TRUE(std::isfinite(whole[i])) << preset << " logit " << i;
      num += (whole[i] - parts[i]) * (whole[i] - parts[i]);
      den += whole[i] * whole[i];
    }
    EXPECT_GT(den, 0) << preset;
    EXPECT_LT(std::sqrt(num / den), 1e-5) << preset << ": chunked MTP rows differ from one chunk";
    // Without the option the module is counted and skipped, and the cache has no layer for it.
    auto plain = DeepSeekModel::load(dir, {});
    EXPECT_FALSE(plain->has_mtp());
    EXPECT_EQ(plain->cache_layers(), cfg.num_hidden_layers);
    EXPECT_GT(plain->weights().skipped_mtp_tensors, 0) << preset;
    EXPECT_NE(plain->fingerprint(), DeepSeekModel::load(dir, [] {
                                      ModelOptions o;
                                      o.mtp = true;
                                      return o;
                                    }())->fingerprint())
        << "the cache formats with and without the MTP layer must not share prefix keys";
  }
}

TEST(MtpModule, ACheckpointWithoutOneIsRefusedByName) {
  ModelConfig cfg = preset_config("tiny-v3");
  cfg.num_nextn_predict_layers = 0;
  const std::string dir = dsinfer::testing::scratch_path("no-mtp");
  write_random_checkpoint(cfg, dir, {});
  ModelOptions opt;
  opt.mtp = true;
  try {
    DeepSeekModel::load(dir, opt);
    FAIL() << "loaded an MTP module the checkpoint does not have";
  } catch (const dsinfer::Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_nextn_predict_layers"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dsinfer::model
