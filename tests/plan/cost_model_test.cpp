// The cost model against numbers it did not produce: DeepSeek-V3's published parameter counts,
// the KV cache size MLA is known for, and DeepGEMM's published kernel table on H800.
#include "plan/cost_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/config.h"
#include "plan/comm_model.h"

namespace dsinfer::plan {
namespace {

const std::string kV3 = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v3.json";
const std::string kV2Lite = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v2-lite.json";
const std::string kHardware = std::string(DSINFER_SOURCE_DIR) + "/data/hardware.json";

struct Fixture : testing::Test {
  model::ModelConfig v3 = model::load_config(kV3);
  HardwareCatalog catalog = load_hardware(kHardware);
  const HardwareProfile& h800 = catalog.profile("H800");
  CostModel cm{v3, h800, catalog.kernels};
};

TEST_F(Fixture, ParameterCountsMatchDeepSeekV3) {
  // Per layer, by hand: q_a 7168x1536 + q_b 1536x(128x192) + kv_a 7168x576 + kv_b 512x(128x256)
  // + o 16384x7168.
  EXPECT_DOUBLE_EQ(cm.attention_params(), 11010048.0 + 37748736 + 4128768 + 16777216 + 117440512);
  EXPECT_DOUBLE_EQ(cm.expert_params(), 3.0 * 7168 * 2048);
  EXPECT_EQ(cm.num_layers(), 61);
  EXPECT_EQ(cm.num_moe_layers(), 58);
  // DeepSeek-V3 has 671B parameters (without the MTP module). With every expert on one GPU the
  // resident bytes are those parameters in FP8, plus one more byte for each BF16 one
  // (embedding, LM head, gates: 2 x 0.93B + 0.11B).
  double bf16_extra = 2 * 129280.0 * 7168 + 58 * 256.0 * 7168;
  EXPECT_NEAR((cm.weight_bytes_per_gpu(256, false) - bf16_extra) / 1e9, 671, 671 * 0.01);
}

TEST_F(Fixture, ActivatedParametersMatch37B) {
  // A token's linear-layer FLOPs are 2 x activated parameters; DeepSeek-V3 activates 37B.
  double flops = 0;
  for (int l = 0; l < 61; ++l) {
    flops += cm.mla_prefill_projections(1, 0).flops;
    flops += v3.is_moe_layer(l) ? cm.shared_experts(1).flops + cm.routed_experts(8, 8).flops : cm.dense_mlp(1).flops;
  }
  flops += cm.lm_head(1).flops + 2 * 129280.0 * 7168;  // the embedding counts as parameters too
  EXPECT_NEAR(flops / 2 / 1e9, 37, 37 * 0.03);
}

TEST_F(Fixture, ForwardFlopsFollowActivatedParametersAndAttention) {
  // One prompt token: 2 x the 37B activated parameters less the embedding (a lookup), plus its
  // attention to itself (61 layers x 128 heads x (192 + 128)).
  const double self_attention = 2.0 * 61 * 128 * (192 + 128);
  EXPECT_NEAR((prefill_flops(v3, 1) - self_attention) / 2 / 1e9, 37 - 0.93, 37 * 0.03);
  // Causal: query i sees i + 1 keys, so T tokens do T(T+1)/2 query-key pairs per head and layer.
  const double T = 1000, linear = prefill_flops(v3, 1) - self_attention - 2 * 129280.0 * 7168;
  EXPECT_NEAR(prefill_flops(v3, T), T * linear + 2 * 129280.0 * 7168 + 2.0 * 61 * 128 * T * (T + 1) / 2 * 320,
              1e-9 * prefill_flops(v3, T));
  // Decode: FlashMLA's count, scores over 576 latent values and outputs over 512, per cached token.
  EXPECT_NEAR(decode_step_flops(v3, 1, 4096) - decode_step_flops(v3, 1, 0), 2.0 * 61 * 128 * 4096 * (576 + 512), 1.0);
  EXPECT_NEAR(decode_step_flops(v3, 32, 4096), 32 * decode_step_flops(v3, 1, 4096), 1e-9 * decode_step_flops(v3, 32, 4096));
}

TEST_F(Fixture, LatentCacheIs70KBPerToken) {
  // (512 + 64) values x 2 bytes x 61 layers.
  EXPECT_DOUBLE_EQ(cm.kv_bytes_per_token(false), 576.0 * 2 * 61);
  EXPECT_DOUBLE_EQ(cm.kv_bytes_per_token(true), 576.0 * 2 * 62);
}

// DeepGEMM's README, H800 SXM5: (M, N, K, TFLOPS) for dense GEMMs and (groups, M per group,
// N, K, TFLOPS) for grouped ones. Every row with N >= 4096 and K >= 1536; the rest (N = 2112:
// 17 output tiles for 132 SMs; K = 512: four K-blocks, all pipeline fill) are shapes a roofline
// cannot see, listed in docs/simulator.md.
TEST_F(Fixture, SoftRooflineTracksDeepGemmsTable) {
  struct Dense { double m, n, k, tflops; };
  for (Dense d : {Dense{64, 24576, 1536, 289}, Dense{64, 7168, 16384, 336},
                  Dense{64, 4096, 7168, 287}, Dense{64, 7168, 2048, 295}, Dense{128, 24576, 1536, 535},
                  Dense{128, 7168, 16384, 645}, Dense{128, 4096, 7168, 533}, Dense{128, 7168, 2048, 510},
                  Dense{4096, 24576, 1536, 990}, Dense{4096, 7168, 16384, 1358}, Dense{4096, 4096, 7168, 1304},
                  Dense{4096, 7168, 2048, 1025}}) {
    OpCost c = cm.gemm(d.m, d.n, d.k);
    double model = c.flops / c.seconds / 1e12;
    EXPECT_NEAR(model / d.tflops, 1.0, 0.15) << d.m << "x" << d.n << "x" << d.k << ": model " << model;
  }
  struct Grouped { double groups, m, n, k, tflops; };
  for (Grouped g : {Grouped{4, 8192, 4096, 7168, 1297}, Grouped{4, 8192, 7168, 2048, 1099},
                    Grouped{8, 4096, 4096, 7168, 1288}, Grouped{8, 4096, 7168, 2048, 1093},
                    Grouped{1, 1024, 4096, 7168, 1233}, Grouped{1, 1024, 7168, 2048, 925},
                    Grouped{2, 512, 4096, 7168, 1040}, Grouped{2, 512, 7168, 2048, 916},
                    Grouped{4, 256, 4096, 7168, 932}, Grouped{4, 256, 7168, 2048, 815}}) {
    OpCost c = cm.grouped_gemm(g.groups, g.groups * g.m, g.n, g.k);
    double model = c.flops / c.seconds / 1e12;
    EXPECT_NEAR(model / g.tflops, 1.0, 0.15) << g.groups << "x" << g.m << "x" << g.n << "x" << g.k << ": model " << model;
  }
}

TEST_F(Fixture, DecodeAttentionIsBoundByFlashMlasFigures) {
  // 128 requests x 4096 latents: memory traffic 128 x 4096 x 576 x 2 bytes; the achieved rate
  // may not beat FlashMLA's published 3000 GB/s nor 660 TFLOPS.
  OpCost c = cm.mla_decode_attention(128, 1, 4096);
  EXPECT_DOUBLE_EQ(c.bytes, 128.0 * 4096 * 576 * 2);
  EXPECT_LE(c.bytes / c.seconds, 3000e9 * 1.01);
  EXPECT_LE(c.flops / c.seconds, 660e12);
  // Twice the queries (an MTP draft) reads the same cache: more FLOPs, same bytes, longer time.
  OpCost two = cm.mla_decode_attention(128, 2, 4096);
  EXPECT_DOUBLE_EQ(two.bytes, c.bytes);
  EXPECT_DOUBLE_EQ(two.flops, 2 * c.flops);
  EXPECT_GT(two.seconds, c.seconds);
}

TEST_F(Fixture, PrefillAttentionFlopsByHand) {
  // 1,000 queries x 2,000 keys x 128 heads x (192 + 128) x 2.
  EXPECT_DOUBLE_EQ(cm.mla_prefill_attention(1000, 2000).flops, 1000.0 * 2000 * 128 * 320 * 2);
  // Cached tokens only add K/V decompression (kv_b), 2 x 512 x 128 x 256 FLOPs each.
  double extra = cm.mla_prefill_projections(10, 90).flops - cm.mla_prefill_projections(10, 0).flops;
  EXPECT_DOUBLE_EQ(extra, 90 * 2.0 * 512 * 128 * 256);
}

TEST(CostModelBf16, UnquantizedModelsUseBf16Weights) {
  model::ModelConfig lite = model::load_config(kV2Lite);
  HardwareCatalog catalog = load_hardware(kHardware);
  CostModel cm(lite, catalog.profile("H100"), catalog.kernels);
  EXPECT_DOUBLE_EQ(cm.weight_bytes_per_param(), 2.0);
  EXPECT_FALSE(cm.has_mtp());
  // V2-Lite has no q LoRA: q_proj maps hidden straight to the heads.
  EXPECT_DOUBLE_EQ(cm.attention_params(), 2048.0 * 16 * 192 + 2048.0 * 576 + 512.0 * 16 * 256 + 16.0 * 128 * 2048);
  // 15.7B parameters in BF16 when every expert is on one GPU.
  EXPECT_NEAR(cm.weight_bytes_per_gpu(64, false) / 2 / 1e9, 15.7, 15.7 * 0.02);
}

}  // namespace
}  // namespace dsinfer::plan
