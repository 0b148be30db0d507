#include "model/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/deepseek.h"
#include "model/weights.h"
#include "test_models.h"

namespace dsinfer::model {
namespace {

namespace fs = std::filesystem;

std::string load_error(const std::string& dir) {
  try {
    ModelConfig cfg = load_config(dir + "/config.json");
    Checkpoint c = Checkpoint::open(dir);
    ModelWeights::load(c, cfg);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Copies a model dir and rewrites one tensor's header entry through `edit`.
std::string with_edited_header(const std::string& src, const std::string& name,
                               const std::function<void(nlohmann::json&)>& edit) {
  std::string dst = dsinfer::testing::scratch_path("edited-" + std::to_string(std::hash<std::string>()(name + std::to_string(rand()))));
  fs::create_directories(dst);
  fs::copy_file(src + "/config.json", dst + "/config.json", fs::copy_options::overwrite_existing);
  std::ifstream in(src + "/model.safetensors", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  nlohmann::json h = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + long(n));
  edit(h);
  std::string hs = h.dump();
  hs.append((8 - hs.size() % 8) % 8, ' ');
  uint64_t m = hs.size();
  std::ofstream out(dst + "/model.safetensors", std::ios::binary);
  out.write(reinterpret_cast<const char*>(&m), 8);
  out.write(hs.data(), long(hs.size()));
  out.write(bytes.data() + 8 + n, long(bytes.size() - 8 - n));
  return dst;
}

TEST(Checkpoint, LoadsSingleFileAndShardedAlike) {
  std::string one = testing::tiny_model("tiny-v3", true);
  std::string sharded = testing::tiny_model("tiny-v3", true, 4 << 20);
  ASSERT_TRUE(fs::exists(sharded + "/model.safetensors.index.json"));
  Checkpoint a = Checkpoint::open(one), b = Checkpoint::open(sharded);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (auto& [name, t] : a.tensors()) {
    const TensorInfo& u = b.get(name);
    ASSERT_EQ(t->nbytes, u.nbytes) << name;
    ASSERT_EQ(std::memcmp(t->data, u.data, t->nbytes), 0) << name;
  }
}

TEST(Checkpoint, Fp8LayoutMatchesDeepSeekV3) {
  Checkpoint c = Checkpoint::open(testing::tiny_model("tiny-v3", true));
  EXPECT_EQ(c.get("model.layers.1.mlp.experts.3.down_proj.weight").dtype, DType::kF8E4M3);
  // kv_a is 176 x 64: one partial block each way.
  EXPECT_EQ(c.get("model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv").shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(c.get("model.layers.0.mlp.down_proj.weight_scale_inv").shape, (std::vector<int64_t>{1, 3}));
  for (const char* kept : {"model.embed_tokens.weight", "lm_head.weight", "model.layers.1.mlp.gate.weight",
                           "model.norm.weight", "model.layers.0.input_layernorm.weight"})
    EXPECT_EQ(c.get(kept).dtype, DType::kBF16) << kept;
  EXPECT_EQ(c.get("model.layers.1.mlp.gate.e_score_correction_bias").dtype, DType::kF32);
  EXPECT_EQ(c.find("model.layers.1.mlp.gate.weight_scale_inv"), nullptr);
}

TEST(Checkpoint, RecognisesAndSkipsMtpLayers) {
  std::string dir = testing::tiny_model("tiny-v3", false);
  Checkpoint c = Checkpoint::open(dir);
  // make-model writes V3's whole module: the projection, a full decoder block, the head's norm
  // and copies of the embedding and the head.
  for (const char* name : {"eh_proj.weight", "self_attn.kv_b_proj.weight", "mlp.experts.0.down_proj.weight",
                           "shared_head.norm.weight", "embed_tokens.weight", "shared_head.head.weight"})
    ASSERT_NE(c.find(std::string("model.layers.3.") + name), nullptr) << name;
  int64_t module_tensors = 0;
  for (auto& [name, info] : c.tensors()) module_tensors += name.rfind("model.layers.3.", 0) == 0;
  ModelWeights w = ModelWeights::load(c, load_config(dir + "/config.json"));
  EXPECT_EQ(w.layers.size(), 3u);
  EXPECT_FALSE(w.mtp.has_value());
  EXPECT_EQ(w.skipped_mtp_tensors, module_tensors);
}

TEST(Checkpoint, BadTensorsAreNamed) {
  std::string dir = testing::tiny_model("tiny-v3", true);
  auto drop = [](const std::string& name) { return [name](nlohmann::json& h) { h.erase(name); }; };
  std::string missing = with_edited_header(dir, "drop", drop("model.layers.2.mlp.experts.5.up_proj.weight"));
  EXPECT_NE(load_error(missing).find("model.layers.2.mlp.experts.5.up_proj.weight"), std::string::npos);

  std::string no_scale = with_edited_header(dir, "noscale", drop("model.layers.0.self_attn.o_proj.weight_scale_inv"));
  EXPECT_NE(load_error(no_scale).find("o_proj.weight_scale_inv"), std::string::npos);

  std::string reshaped = with_edited_header(dir, "shape", [](nlohmann::json& h) {
    auto& t = h["model.layers.0.self_attn.kv_b_proj.weight"];
    auto s = t["shape"];
    t["shape"] = {s[1], s[0]};
  });
  std::string msg = load_error(reshaped);
  EXPECT_NE(msg.find("kv_b_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json implies"), std::string::npos) << msg;

  std::string fp8_norm = with_edited_header(dir, "dtype", [](nlohmann::json& h) {
    auto& t = h["model.norm.weight"];
    auto off = t["data_offsets"];
    t["dtype"] = "F8_E4M3";
    t["shape"] = {off[1].get<int64_t>() - off[0].get<int64_t>()};
  });
  msg = load_error(fp8_norm);
  EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
}

// A private copy of a model dir whose tensor `name` has element `index` overwritten with
// `bytes` (a NaN or Inf bit pattern of the tensor's dtype).
std::string with_poisoned_tensor(const std::string& src, const std::string& name, int64_t index,
                                 const std::vector<uint8_t>& bytes) {
  std::string dst =
      dsinfer::testing::scratch_path("poisoned-" + std::to_string(std::hash<std::string>()(name)) + "-" + std::to_string(index));
  fs::remove_all(dst);
  fs::create_directories(dst);
  for (auto& e : fs::directory_iterator(src)) fs::copy_file(e.path(), dst / e.path().filename());
  std::ifstream in(dst + "/model.safetensors", std::ios::binary);
  std::vector<char> file((std::istreambuf_iterator<char>(in)), {});
  uint64_t n;
  std::memcpy(&n, file.data(), 8);
  nlohmann::json h = nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + long(n));
  const size_t off = 8 + n + h[name]["data_offsets"][0].get<size_t>() + size_t(index) * bytes.size();
  std::memcpy(file.data() + off, bytes.data(), bytes.size());
  std::ofstream(dst + "/model.safetensors", std::ios::binary).write(file.data(), long(file.size()));
  return dst;
}

std::string model_load_error(const std::string& dir) {
  try {
    DeepSeekModel::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Checkpoint, NonFiniteWeightsAreRefusedNamingTheTensor) {
  const std::string bf16 = testing::tiny_model("tiny-v3", false), fp8 = testing::tiny_model("tiny-v3", true);
  struct Case {
    std::string dir, tensor;
    int64_t index;
    std::vector<uint8_t> bytes;
  };
  const Case cases[] = {
      {bf16, "model.layers.0.self_attn.kv_b_proj.weight", 77, {0xc0, 0x7f}},           // bf16 NaN
      {bf16, "model.layers.1.mlp.experts.3.down_proj.weight", 5, {0x80, 0xff}},       // bf16 -Inf
      {bf16, "model.embed_tokens.weight", 1000, {0x80, 0x7f}},                        // +Inf
      {bf16, "lm_head.weight", 3, {0xc0, 0x7f}},
      {bf16, "model.layers.2.post_attention_layernorm.weight", 0, {0xc0, 0x7f}},      // a vector
      {fp8, "model.layers.0.self_attn.o_proj.weight", 12, {0x7f}},                    // e4m3 NaN
      {fp8, "model.layers.2.mlp.shared_experts.up_proj.weight_scale_inv", 0, {0, 0, 0x80, 0x7f}},  // Inf scale
  };
  for (const Case& c : cases) {
    std::string dir = with_poisoned_tensor(c.dir, c.tensor, c.index, c.bytes);
    std::string msg = model_load_error(dir);
    EXPECT_NE(msg.find("tensor " + c.tensor + " holds NaN or Inf"), std::string::npos) << c.tensor << ": " << msg;
    // The opt-out loads it (for the engine's non-finite-logits test, and for users who must).
    ModelOptions lax;
    lax.check_weights = false;
    if (c.tensor.find("layernorm") == std::string::npos) {
      EXPECT_NO_THROW(DeepSeekModel::load(dir, lax)) << c.tensor;
    }
    fs::remove_all(dir);
  }
  EXPECT_EQ(model_load_error(bf16), "");
  EXPECT_EQ(model_load_error(fp8), "");
}

TEST(Checkpoint, NonRegularShardIsRefusedWithoutBlocking) {
  std::string dir = testing::tiny_model("tiny-v3", false);
  std::string fifo = dsinfer::testing::scratch_path("fifo"), sub = dsinfer::testing::scratch_path("dir");
  fs::remove_all(fifo);
  fs::remove_all(sub);
  fs::create_directories(fifo);
  fs::create_directories(sub + "/model.safetensors");
  fs::copy_file(dir + "/config.json", fifo + "/config.json");
  fs::copy_file(dir + "/config.json", sub + "/config.json");
  ASSERT_EQ(::mkfifo((fifo + "/model.safetensors").c_str(), 0600), 0);
  std::string msg = load_error(fifo);  // blocked forever in open() before the fix
  EXPECT_NE(msg.find(fifo + "/model.safetensors is not a regular file"), std::string::npos) << msg;
  msg = load_error(sub);
  EXPECT_NE(msg.find(sub + "/model.safetensors is not a regular file"), std::string::npos) << msg;
  fs::remove_all(fifo);
  fs::remove_all(sub);
}

TEST(Checkpoint, DeeplyNestedHeaderIsRefused) {
  std::string dir = testing::tiny_model("tiny-v3", false);
  std::string deep = with_edited_header(dir, "deep", [](nlohmann::json& h) {
    nlohmann::json v = 1;
    for (int i = 0; i < 1000; ++i) v = nlohmann::json::array({std::move(v)});
    h["__metadata__"]["x"] = std::move(v);
  });
  std::string msg = load_error(deep);
  EXPECT_NE(msg.find("model.safetensors: header nests JSON deeper than"), std::string::npos) << msg;
}

TEST(Checkpoint, TruncatedShardIsReportedWithItsPath) {
  std::string dir = testing::tiny_model("tiny-v3", false);
  std::string dst = dsinfer::testing::scratch_path("truncated");
  fs::create_directories(dst);
  fs::copy_file(dir + "/config.json", dst + "/config.json", fs::copy_options::overwrite_existing);
  fs::copy_file(dir + "/model.safetensors", dst + "/model.safetensors", fs::copy_options::overwrite_existing);
  fs::resize_file(dst + "/model.safetensors", fs::file_size(dst + "/model.safetensors") / 2);
  std::string msg = load_error(dst);
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(Checkpoint, MissingDirectoryAndShard) {
  EXPECT_NE(load_error("/nonexistent-model").find("/nonexistent-model"), std::string::npos);
  std::string sharded = testing::tiny_model("tiny-v3", false, 4 << 20);
  std::string dst = sharded + "-lost-shard";
  fs::create_directories(dst);
  for (auto& e : fs::directory_iterator(sharded)) fs::copy_file(e.path(), dst / e.path().filename(), fs::copy_options::overwrite_existing);
  fs::remove(dst + "/model-00002-of-" + [&] {
    for (auto& e : fs::directory_iterator(dst)) {
      std::string n = e.path().filename().string();
      if (n.rfind("model-00001-of-", 0) == 0) return n.substr(15);
    }
    return std::string("?");
  }());
  EXPECT_NE(load_error(dst).find("model-00002-of-"), std::string::npos);
}

}  // namespace
}  // namespace dsinfer::model
