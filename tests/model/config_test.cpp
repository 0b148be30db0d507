#include "model/config.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "test_helpers.h"

namespace dsinfer::model {
namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return json::parse(in);
}

const std::string kV3 = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v3.json";
const std::string kV2Lite = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v2-lite.json";

std::string load_error(const std::string& path) {
  try {
    load_config(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ParsesRealDeepSeekV3) {
  ModelConfig c = load_config(kV3);
  EXPECT_EQ(c.architecture, "DeepseekV3ForCausalLM");
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  EXPECT_EQ(*c.q_lora_rank, 1536);
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.latent_dim(), 576);
  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSigmoid);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  ASSERT_TRUE(c.yarn.has_value());
  EXPECT_DOUBLE_EQ(c.yarn->factor, 40);
  EXPECT_EQ(c.yarn->original_max_position_embeddings, 4096);
  ASSERT_TRUE(c.quant.has_value());
  EXPECT_EQ(c.quant->block_n, 128);
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
  EXPECT_EQ(c.eos_token_id, 1);
  EXPECT_FALSE(c.is_moe_layer(2));
  EXPECT_TRUE(c.is_moe_layer(3));
  // 192^-0.5 * (0.1 * ln 40 + 1)^2
  double m = 0.1 * std::log(40.0) + 1;
  EXPECT_NEAR(c.softmax_scale(), m * m / std::sqrt(192.0), 1e-12);
}

TEST(Config, ParsesRealDeepSeekV2Lite) {
  ModelConfig c = load_config(kV2Lite);
  EXPECT_EQ(c.architecture, "DeepseekV2ForCausalLM");
  EXPECT_FALSE(c.q_lora_rank.has_value());
  EXPECT_EQ(c.topk_method, TopkMethod::kGreedy);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_EQ(c.n_shared_experts, 2);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_FALSE(c.quant.has_value());
  EXPECT_DOUBLE_EQ(c.yarn->mscale_all_dim, 0.707);
  EXPECT_EQ(c.bos_token_id, 100000);
}

TEST(Config, RoundTripsThroughJson) {
  ModelConfig a = load_config(kV3);
  ModelConfig b = parse_config(to_json(a));
  EXPECT_EQ(to_json(a), to_json(b));
}

void expect_rejected(json j, const std::string& needle) {
  try {
    parse_config(j);
    FAIL() << "accepted a config that should name " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Config, RejectsBadValuesNamingTheField) {
  json v3 = read_json(kV3);
  json j = v3;
  j["architectures"] = {"LlamaForCausalLM"};
  expect_rejected(j, "LlamaForCausalLM");
  j = v3; j.erase("hidden_size");
  expect_rejected(j, "hidden_size");
  j = v3; j["hidden_size"] = "big";
  expect_rejected(j, "hidden_size");
  j = v3; j["n_group"] = 7;
  expect_rejected(j, "n_group");
  j = v3; j["topk_group"] = 9;
  expect_rejected(j, "topk_group");
  j = v3; j["num_experts_per_tok"] = 0;
  expect_rejected(j, "num_experts_per_tok");
  j = v3; j["topk_method"] = "magic";
  expect_rejected(j, "topk_method");
  j = v3; j["scoring_func"] = "relu";
  expect_rejected(j, "scoring_func");
  j = v3; j["qk_rope_head_dim"] = 63;
  expect_rejected(j, "qk_rope_head_dim");
  j = v3; j["rope_scaling"]["type"] = "linear";
  expect_rejected(j, "rope_scaling");
  j = v3; j["quantization_config"]["weight_block_size"] = {128};
  expect_rejected(j, "weight_block_size");
  j = v3; j["first_k_dense_replace"] = 99;
  expect_rejected(j, "first_k_dense_replace");
  j = v3; j["num_key_value_heads"] = 8;
  expect_rejected(j, "num_key_value_heads");
  expect_rejected(json::array(), "object");
}

TEST(Config, FloatFieldsMustBeFiniteAndPositive) {
  const json v3 = read_json(kV3);
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  for (const char* key : {"rms_norm_eps", "rope_theta", "routed_scaling_factor"})
    for (double bad : {0.0, -1e-6, inf, nan}) {
      json j = v3;
      j[key] = bad;  // JSON text holds neither NaN nor Inf, but a json built in code can
      expect_rejected(j, key);
    }
  json j = v3;
  j["rope_scaling"]["mscale"] = inf;
  expect_rejected(j, "rope_scaling.mscale");
  j = v3;
  j["rope_scaling"]["factor"] = inf;
  expect_rejected(j, "rope_scaling.factor");
}

TEST(Config, IgnoresUnknownKeysAndRefusesIntegersBeyond64Bits) {
  const json v3 = read_json(kV3);
  json j = v3;
  j["transformers_version"] = "4.99";  // Hugging Face configs carry many keys dsinfer does not read
  j["some_future_field"] = {{"x", 1}};
  EXPECT_NO_THROW(parse_config(j));
  j = v3;
  j["hidden_size"] = json::parse("18446744073709551615");  // was read as -1
  expect_rejected(j, "field 'hidden_size' must be an integer");
  j = v3;
  j["vocab_size"] = int64_t(1) << 40;  // token ids are int32
  expect_rejected(j, "field 'vocab_size' must be an integer in [1, 2147483647]");
}

TEST(Config, LoadNamesTheFileOnce) {
  json j = read_json(kV3);
  j["rms_norm_eps"] = 0;
  const std::string path = ::testing::TempDir() + "/dsinfer-config-once-" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << j.dump();
  EXPECT_EQ(load_error(path),
            path + ": field 'rms_norm_eps' must be a finite positive number (greater than zero), got 0");
  std::filesystem::remove(path);
}

TEST(Config, LoadNamesTheFileForDirectoriesFifosAndDeepNesting) {
  const std::string base = ::testing::TempDir() + "/dsinfer-config-" + std::to_string(::getpid());
  std::filesystem::create_directories(base + "/dir/config.json");
  std::string msg = load_error(base + "/dir/config.json");
  EXPECT_NE(msg.find(base + "/dir/config.json is not a regular file"), std::string::npos) << msg;
  std::filesystem::create_directories(base + "/fifo");
  ASSERT_EQ(::mkfifo((base + "/fifo/config.json").c_str(), 0600), 0);
  msg = load_error(base + "/fifo/config.json");  // would block forever in open() before the fix
  EXPECT_NE(msg.find("config.json is not a regular file"), std::string::npos) << msg;
  std::ofstream(base + "/deep.json") << "{\"a\":" << std::string(100000, '[') << std::string(100000, ']') << "}";
  msg = load_error(base + "/deep.json");
  EXPECT_NE(msg.find(base + "/deep.json nests JSON deeper than"), std::string::npos) << msg;
  std::filesystem::remove_all(base);
}

TEST(Config, LoadReportsMissingAndMalformedFiles) {
  EXPECT_THROW(load_config("/nonexistent/config.json"), Error);
  std::string path = dsinfer::testing::scratch_path("bad_config.json");
  std::ofstream(path) << "{ not json";
  try {
    load_config(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos);
  }
}

}  // namespace
}  // namespace dsinfer::model
