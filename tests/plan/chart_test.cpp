#include "plan/chart.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "base/error.h"
#include "model/config.h"
#include "plan/hardware.h"

namespace dsinfer::plan {
namespace {

const std::string kV3 = std::string(DSINFER_ASSETS_DIR) + "/configs/deepseek-v3.json";
const std::string kHardware = std::string(DSINFER_SOURCE_DIR) + "/data/hardware.json";

ChartInput sample() {
  static model::ModelConfig v3 = model::load_config(kV3);
  static HardwareCatalog catalog = load_hardware(kHardware);
  ChartInput in;
  in.title = "test";
  in.prefill = simulate_prefill(v3, catalog, catalog.profile("H800"), PrefillOptions{});
  in.decode = simulate_decode(v3, catalog, catalog.profile("H800"), DecodeOptions{});
  in.curve = decode_curve(v3, catalog, catalog.profile("H800"), DecodeOptions{});
  in.target_tokens_per_s = 20;
  return in;
}

TEST(Chart, ScriptNamesOutputAndData) {
  std::string s = gnuplot_script(sample(), "/tmp/it's.png", "/data");
  EXPECT_NE(s.find("set output '/tmp/it''s.png'"), std::string::npos) << s;  // quote doubled
  EXPECT_NE(s.find("'/data/breakdown.dat'"), std::string::npos);
  EXPECT_NE(s.find("'/data/curve.dat'"), std::string::npos);
  EXPECT_NE(s.find("multiplot layout 1,2"), std::string::npos);
}

TEST(Chart, MissingGnuplotIsSaidPlainly) {
  try {
    write_chart(sample(), testing::TempDir() + "/never.png", "/nonexistent/bin/gnuplot");
    ADD_FAILURE();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("gnuplot was not found"), std::string::npos) << m;
    EXPECT_NE(m.find("gnuplot-nox"), std::string::npos) << m;
  }
}

TEST(Chart, WritesAPngWhenGnuplotIsInstalled) {
  if (find_executable("gnuplot").empty()) GTEST_SKIP() << "gnuplot not installed";
  std::string path = testing::TempDir() + "/dsinfer_chart_test.png";
  std::remove(path.c_str());
  write_chart(sample(), path);
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace dsinfer::plan
