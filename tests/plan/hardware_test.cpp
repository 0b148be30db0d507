#include "plan/hardware.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsinfer::plan {
namespace {

using nlohmann::json;

const std::string kHardware = std::string(DSINFER_SOURCE_DIR) + "/data/hardware.json";

json committed() {
  std::ifstream in(kHardware);
  return json::parse(in);
}

void expect_error(const json& j, std::initializer_list<std::string> fragments) {
  try {
    parse_hardware(j, "hw.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

TEST(Hardware, CommittedFileHasTheFourProfiles) {
  HardwareCatalog c = load_hardware(kHardware);
  EXPECT_EQ(c.names(), (std::vector<std::string>{"H800", "H100", "H200", "B200"}));
  const HardwareProfile& h800 = c.profile("h800");  // case-insensitive
  EXPECT_DOUBLE_EQ(h800.fp8_flops, 1979e12);
  EXPECT_DOUBLE_EQ(h800.bf16_flops, 989e12);
  EXPECT_DOUBLE_EQ(h800.hbm_bandwidth, 3.35e12);
  EXPECT_DOUBLE_EQ(h800.nic_bandwidth, 50e9);
  EXPECT_EQ(h800.gpus_per_node, 8);
  EXPECT_FALSE(h800.sources.empty());
  // The H800's cut is NVLink only; H200 differs from H100 in memory only.
  EXPECT_LT(h800.nvlink_bandwidth, c.profile("H100").nvlink_bandwidth);
  EXPECT_EQ(c.profile("H100").fp8_flops, c.profile("H200").fp8_flops);
  EXPECT_GT(c.profile("H200").hbm_bandwidth, c.profile("H100").hbm_bandwidth);
  EXPECT_GT(c.profile("B200").fp8_flops, 2 * c.profile("H200").fp8_flops);
  for (const auto& p : c.profiles) EXPECT_FALSE(p.sources.empty()) << p.name;

  // DeepEP's published rows, as read.
  EXPECT_EQ(c.deepep.normal_internode.size(), 3u);
  EXPECT_EQ(c.deepep.normal_internode[1].ep, 32);
  EXPECT_DOUBLE_EQ(c.deepep.normal_internode[1].dispatch, 58e9);
  EXPECT_EQ(c.deepep.low_latency.back().ep, 256);
  EXPECT_DOUBLE_EQ(c.deepep.low_latency[4].combine, 39e9);
  EXPECT_EQ(c.deepep.low_latency_tokens, 128);
}

TEST(Hardware, PrefillAttentionEfficiencyInterpolates) {
  HardwareCatalog c = load_hardware(kHardware);
  EXPECT_DOUBLE_EQ(c.kernels.attention_prefill(100), 0.435);     // clamped below
  EXPECT_DOUBLE_EQ(c.kernels.attention_prefill(2048), 0.572);
  EXPECT_DOUBLE_EQ(c.kernels.attention_prefill(1e6), 0.628);     // clamped above
  double mid = c.kernels.attention_prefill(std::sqrt(2048.0 * 4096));  // geometric midpoint
  EXPECT_NEAR(mid, (0.572 + 0.597) / 2, 1e-12);
}

TEST(Hardware, UnknownNameListsTheKnownOnes) {
  HardwareCatalog c = load_hardware(kHardware);
  try {
    c.profile("A100");
    ADD_FAILURE();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("unknown hardware 'A100'"), std::string::npos) << m;
    EXPECT_NE(m.find("H800, H100, H200, B200"), std::string::npos) << m;
  }
}

TEST(Hardware, BadFilesNameTheKey) {
  json j = committed();
  j["profiles"][2].erase("hbm_gb");
  expect_error(j, {"hw.json", "missing key 'profiles[2].hbm_gb'"});

  j = committed();
  j["profiles"][0]["nic_gb_per_s"] = -50;
  expect_error(j, {"profiles[0].nic_gb_per_s", "greater than zero"});

  j = committed();
  j["profiles"][1]["hbm_tbps"] = 3.35;  // misspelt
  expect_error(j, {"unknown key 'profiles[1].hbm_tbps'"});

  j = committed();
  j["profiles"][3]["name"] = "h800";
  expect_error(j, {"profiles[3].name", "repeats"});

  j = committed();
  j["format"] = "dsinfer-hardware-9";
  expect_error(j, {"format", "dsinfer-hardware-1"});

  j = committed();
  std::swap(j["deepep"]["normal_internode"][0], j["deepep"]["normal_internode"][2]);
  expect_error(j, {"deepep.normal_internode", "increasing"});

  j = committed();
  j["deepep"]["low_latency"][1].erase("combine_gb_per_s");
  expect_error(j, {"missing key 'deepep.low_latency[1].combine_gb_per_s'"});

  j = committed();
  j["kernels"]["gemm_compute"] = 1.5;
  expect_error(j, {"kernels.gemm_compute", "fraction"});

  j = committed();
  j["profiles"][0]["sms"] = 132.5;
  expect_error(j, {"profiles[0].sms", "integer"});

  j = committed();
  j["profiles"] = json::array();
  expect_error(j, {"profiles", "non-empty list"});
}

TEST(Hardware, SearchPathsHonourTheEnvironment) {
  setenv("DSINFER_HARDWARE_FILE", kHardware.c_str(), 1);
  std::vector<std::string> paths = hardware_search_paths("/somewhere/build/dsinfer");
  ASSERT_GE(paths.size(), 3u);
  EXPECT_EQ(paths[0], kHardware);
  EXPECT_EQ(paths[2], "/somewhere/data/hardware.json");  // a build folder inside the source tree
  EXPECT_EQ(find_hardware_file("/nowhere/dsinfer"), kHardware);
  setenv("DSINFER_HARDWARE_FILE", "/nonexistent/hw.json", 1);
  // The last candidate is ./data/hardware.json: look from a folder that has none.
  std::filesystem::path here = std::filesystem::current_path();
  std::filesystem::current_path(testing::TempDir());
  try {
    find_hardware_file("/nowhere/bin/dsinfer");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--hardware-file"), std::string::npos) << e.what();
  }
  std::filesystem::current_path(here);
  unsetenv("DSINFER_HARDWARE_FILE");
}

}  // namespace
}  // namespace dsinfer::plan
