// DSINFER_DUMP's rules: which names and layers are written, where, and what a bad spec says.
#include "model/dump.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/error.h"
#include "test_helpers.h"

namespace dsinfer::model {
namespace {

TEST(Dump, WritesTheNamesAndLayersAskedFor) {
  std::string dir = dsinfer::testing::scratch_path("dump-test");
  std::filesystem::remove_all(dir);
  Dump d = Dump::parse("attn_out:1-2,logits", dir);
  ASSERT_TRUE(d.enabled());
  float data[6] = {1, 2, 3, 4, 5, 6};
  for (int64_t l = 0; l < 4; ++l) d("attn_out", l, data, 2, 3);
  d("ffn_out", 1, data, 2, 3);
  d("logits", -1, data, 1, 6);
  d.next_step();
  d("logits", -1, data, 1, 6);
  EXPECT_FALSE(std::filesystem::exists(dir + "/attn_out.L0.s0.npy"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/attn_out.L1.s0.npy"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/attn_out.L2.s0.npy"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/attn_out.L3.s0.npy"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/ffn_out.L1.s0.npy"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/logits.s0.npy"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/logits.s1.npy"));
  // .npy header (128 bytes for this shape) + 6 floats
  EXPECT_EQ(std::filesystem::file_size(dir + "/attn_out.L1.s0.npy"), 128u + 6 * sizeof(float));
}

TEST(Dump, EmptyIsOffAndBadSpecsAreNamed) {
  EXPECT_FALSE(Dump::parse("", "unused").enabled());
  for (const char* bad : {"attn_out:x", "attn_out:3-1", ":2", "attn_out:1-"}) {
    try {
      Dump::parse(bad, dsinfer::testing::scratch_path("dump-bad"));
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("DSINFER_DUMP"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace dsinfer::model
