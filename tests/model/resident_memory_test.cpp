// Weights resident once: a matrix repacked at load must not also stay resident through the
// checkpoint's mapping (peak RSS was ~1.8x the checkpoint). Residency is measured as the Rss of
// the checkpoint's mappings in /proc/self/smaps: the pages mapped into this process, which does
// not depend on what the page cache holds (mincore would).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "model/checkpoint.h"
#include "model/deepseek.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace dsinfer::model {
namespace {

namespace fs = std::filesystem;

// Big enough that every matrix spans many pages (a 4 KiB page holds 2,048 bf16 values) and the
// fault-around window (64 KiB), small enough to write and load in well under a second: ~22 MB
// in BF16, 2 layers (one dense, one MoE with 16 experts and a shared one).
ModelConfig resident_config() {
  ModelConfig c = preset_config("tiny-v3");
  c.vocab_size = 2048;
  c.hidden_size = 512;
  c.num_hidden_layers = 2;
  c.first_k_dense_replace = 1;
  c.intermediate_size = 1024;
  c.moe_intermediate_size = 256;
  c.n_routed_experts = 16;
  c.num_experts_per_tok = 4;
  c.n_shared_experts = 1;
  c.n_group = 4;
  c.topk_group = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.q_lora_rank = 256;
  c.kv_lora_rank = 256;
  c.qk_nope_head_dim = 64;
  c.qk_rope_head_dim = 32;
  c.v_head_dim = 64;
  c.num_nextn_predict_layers = 0;
  return c;
}

// A private checkpoint directory, removed afterwards.
struct TempModel {
  std::string dir;
  explicit TempModel(bool fp8) {
    dir = ::testing::TempDir() + "/dsinfer-resident-" + (fp8 ? "fp8-" : "bf16-") + std::to_string(::getpid());
    RandomCheckpointOptions opt;
    opt.fp8 = fp8;
    opt.seed = 11;
    write_random_checkpoint(resident_config(), dir, opt);
    dir = fs::canonical(dir).string();  // smaps names files by their resolved path
  }
  ~TempModel() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  uint64_t safetensors_bytes() const {
    uint64_t n = 0;
    for (auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") n += e.file_size();
    return n;
  }
};

// Sum of Rss (bytes) over this process's mappings of files under `dir`; -1 when smaps is
// unreadable. `mappings` counts them, so a test can tell "nothing resident" from "not mapped".
int64_t resident_bytes_under(const std::string& dir, int* mappings) {
  std::ifstream in("/proc/self/smaps");
  if (!in) return -1;
  int64_t total = 0;
  bool ours = false;
  *mappings = 0;
  std::string line;
  while (std::getline(in, line)) {
    // A mapping's header line: "start-end perms offset dev inode   path"; field lines: "Key: value kB".
    std::istringstream ss(line);
    std::string first;
    ss >> first;
    if (!first.empty() && first.back() != ':') {
      std::string perms, offset, dev, inode, path;
      ss >> perms >> offset >> dev >> inode;
      std::getline(ss >> std::ws, path);
      ours = path.rfind(dir + "/", 0) == 0;
      if (ours) ++*mappings;
    } else if (ours && first == "Rss:") {
      int64_t kb = 0;
      ss >> kb;
      total += kb * 1024;
    }
  }
  return total;
}

TEST(ResidentMemory, ReleasedTensorsLeaveTheResidentSetAndStayReadable) {
  TempModel model(false);
  Checkpoint ckpt = Checkpoint::open(model.dir);
  const TensorInfo& embed = ckpt.get("model.embed_tokens.weight");
  // Touch every tensor, as packing does.
  uint64_t sum = 0, tensor_bytes = 0;
  for (auto& [name, t] : ckpt.tensors()) {
    for (size_t i = 0; i < t->nbytes; ++i) sum += t->data[i];
    tensor_bytes += t->nbytes;
  }
  int maps = 0;
  const int64_t touched = resident_bytes_under(model.dir, &maps);
  if (touched < 0) GTEST_SKIP() << "/proc/self/smaps is not readable";
  ASSERT_GE(maps, 1);
  EXPECT_GE(touched, int64_t(tensor_bytes) * 9 / 10) << "the measurement must see the touched pages";

  // Release everything but the embedding (used in place by the model).
  for (auto& [name, t] : ckpt.tensors())
    if (t != &embed) ckpt.release(t->data, t->nbytes);
  const int64_t after = resident_bytes_under(model.dir, &maps);
  const int64_t page = int64_t(::sysconf(_SC_PAGESIZE));
  EXPECT_GE(after, int64_t(embed.nbytes) - 2 * page) << "the embedding's pages must stay";
  EXPECT_LE(after, int64_t(embed.nbytes) + 2 * page) << "released tensors must leave the resident set";
  EXPECT_GE(ckpt.released_bytes(), tensor_bytes - embed.nbytes - 2 * size_t(page));

  // Released bytes read back unchanged (the pages fault back in from the file).
  uint64_t again = 0;
  for (auto& [name, t] : ckpt.tensors())
    for (size_t i = 0; i < t->nbytes; ++i) again += t->data[i];
  EXPECT_EQ(again, sum);
}

// On the code before the fix every packed matrix stayed resident through the mapping: Rss of the
// checkpoint was ~90% of its size after load (all but the untouched embedding).
void expect_weights_resident_once(bool fp8) {
  TempModel model(fp8);
  auto m = DeepSeekModel::load(model.dir);
  int maps = 0;
  const int64_t resident = resident_bytes_under(model.dir, &maps);
  if (resident < 0) GTEST_SKIP() << "/proc/self/smaps is not readable";
  ASSERT_GE(maps, 1) << "the checkpoint is not mapped";
  const int64_t file = int64_t(model.safetensors_bytes());
  // What may stay: pages of the tensors not packed (norms, router, bias: a few KiB each, and
  // what fault-around mapped beside them), never the packed matrices.
  EXPECT_LE(resident, file / 20) << "checkpoint pages resident after load: " << resident << " of " << file
                                 << " bytes; packed weights are being kept twice";
}

TEST(ResidentMemory, PackedWeightsAreNotResidentTwiceBf16) { expect_weights_resident_once(false); }
TEST(ResidentMemory, PackedWeightsAreNotResidentTwiceFp8) { expect_weights_resident_once(true); }

}  // namespace
}  // namespace dsinfer::model
