#include "parallel/eplb_load.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "base/error.h"

namespace dsinfer::parallel {
namespace {

template <typename Fn>
void expect_error(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("dsinfer_eplb_load_test_" + name)).string();
}

TEST(ExpertLoad, ParsesArrayOfArrays) {
  ExpertLoad l = parse_expert_load_json("[[1, 2.5, 0], [4, 5, 6e3]]", "x.json");
  ASSERT_EQ(l.num_layers, 2);
  ASSERT_EQ(l.num_experts, 3);
  EXPECT_EQ(l.values, (std::vector<double>{1, 2.5, 0, 4, 5, 6000}));
  EXPECT_EQ(l.at(1, 2), 6000);
}

TEST(ExpertLoad, RejectsMalformedJsonNamingTheEntry) {
  auto parse = [](const std::string& text) { return [text] { parse_expert_load_json(text, "f.json"); }; };
  expect_error(parse("[[1, 2"), "f.json is not valid JSON");
  expect_error(parse(std::string(100000, '[') + std::string(100000, ']')), "f.json nests JSON deeper than");
  expect_error(parse("{\"load\": [[1]]}"), "top level is object");
  expect_error(parse("[]"), "no layers");
  expect_error(parse("[[]]"), "layer 0 has no experts");
  expect_error(parse("[[1, 2], 3]"), "layer 1 is number, not an array");
  expect_error(parse("[[1, 2], [3]]"), "ragged arrays: layer 1 has 1 experts but layer 0 has 2");
  expect_error(parse("[[1, \"2\"]]"), "load[0][1] is string, not a number");
  expect_error(parse("[[1, null]]"), "load[0][1] is null");
  expect_error(parse("[[1, true]]"), "load[0][1] is boolean");
  expect_error(parse("[[1, 2], [3, -4]]"), "load[1][1] = -4 is negative");
  expect_error(parse("[[NaN]]"), "not valid JSON");  // JSON has no NaN; the parser says so
}

TEST(ExpertLoad, RejectsNonFiniteValuesBuiltInMemory) {
  expect_error([] { make_expert_load({{1, std::nan("")}}); }, "load[0][1] is NaN");
  expect_error([] { make_expert_load({{-std::numeric_limits<double>::infinity()}}); }, "is infinite");
  expect_error([] { make_expert_load({{1}, {2, 3}}); }, "ragged");
  expect_error([] { make_expert_load({}); }, "empty");
  ExpertLoad bad(1, 2);
  bad.values.pop_back();
  expect_error([&] { validate_expert_load(bad); }, "holds 1 values, expected 1 x 2");
}

TEST(ExpertLoad, FileRoundTripKeepsCountsAsIntegersAndFractionsExactly) {
  ExpertLoad l = make_expert_load({{3, 0, 12345678901.0}, {0.1, 1.0 / 3, 7}});
  std::string text = expert_load_to_json(l);
  EXPECT_NE(text.find("[3,0,12345678901]"), std::string::npos) << text;
  std::string path = temp_path("roundtrip.json");
  write_expert_load_file(l, path);
  ExpertLoad back = read_expert_load_file(path);
  EXPECT_EQ(back.num_layers, 2);
  EXPECT_EQ(back.values, l.values);  // bit-exact, 1/3 included
  std::remove(path.c_str());
}

TEST(ExpertLoad, FileErrorsNameThePath) {
  expect_error([] { read_expert_load_file("/nonexistent/dsinfer/load.json"); }, "/nonexistent/dsinfer/load.json: cannot open");
  expect_error([] { write_expert_load_file(make_expert_load({{1}}), "/nonexistent/dsinfer/out.json"); },
               "cannot open for writing");
  std::string path = temp_path("bad.json");
  std::ofstream(path) << "[[1, 2], [3]]";
  expect_error([&] { read_expert_load_file(path); }, path + ": ragged arrays");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace dsinfer::parallel
