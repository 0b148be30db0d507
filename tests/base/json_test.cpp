#include "base/json.h"

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"

namespace dsinfer {
namespace {

std::string nested(int depth, char open = '[', char close = ']') {
  return std::string(size_t(depth), open) + std::string(size_t(depth), close);
}

std::string error_of(const std::string& text, int max_depth = kMaxJsonDepth) {
  try {
    parse_json(text, "the test input", max_depth);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ParseJson, ParsesOrdinaryDocuments) {
  auto j = parse_json(R"({"a": [1, 2, {"b": null}], "c": "d"})", "x");
  EXPECT_EQ(j["a"][1], 2);
  EXPECT_EQ(j["c"], "d");
}

TEST(ParseJson, AcceptsNestingUpToTheLimit) {
  EXPECT_NO_THROW(parse_json(nested(kMaxJsonDepth), "x"));
  std::string obj;
  for (int i = 0; i < kMaxJsonDepth; ++i) obj += "{\"k\":";
  obj += "1" + std::string(size_t(kMaxJsonDepth), '}');
  EXPECT_NO_THROW(parse_json(obj, "x"));
}

TEST(ParseJson, RefusesDeeperNestingNamingTheInput) {
  std::string msg = error_of(nested(kMaxJsonDepth + 1));
  EXPECT_NE(msg.find("the test input nests JSON deeper than 128 levels"), std::string::npos) << msg;
  // Objects count the same as arrays.
  std::string obj;
  for (int i = 0; i < 200; ++i) obj += "{\"k\":";
  obj += "1" + std::string(200, '}');
  EXPECT_NE(error_of(obj).find("deeper than"), std::string::npos);
}

TEST(ParseJson, SeventyThousandLevelsFailCleanly) {
  // The issue's tool-call arguments: parsed whole, this would overflow the stack when dumped.
  std::string msg = error_of(nested(70000));
  EXPECT_NE(msg.find("deeper than"), std::string::npos) << msg;
}

TEST(ParseJson, SyntaxErrorsAreErrorsNamingTheInput) {
  std::string msg = error_of("{\"a\": ");
  EXPECT_NE(msg.find("the test input is not valid JSON"), std::string::npos) << msg;
  EXPECT_NE(error_of("[1, 2", 4).find("not valid JSON"), std::string::npos);
}

TEST(ParseJson, TheLimitIsAParameter) {
  EXPECT_NO_THROW(parse_json("[[1]]", "x", 2));
  EXPECT_NE(error_of("[[[1]]]", 2).find("deeper than 2 levels"), std::string::npos);
}

}  // namespace
}  // namespace dsinfer
