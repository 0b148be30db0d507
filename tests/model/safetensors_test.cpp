#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "base/error.h"
#include "test_helpers.h"

namespace dsinfer::model {
namespace {

// A well-formed image: header {a: F32 [2], b: BF16 [3]} + 14 data bytes.
std::vector<uint8_t> image(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

const std::string kGood =
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},"__metadata__":{"format":"pt"}})";

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors(bytes.data(), bytes.size(), "x.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, ParsesAWellFormedImage) {
  auto img = image(kGood, 14);
  auto t = parse_safetensors(img.data(), img.size(), "x.safetensors");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t["a"].dtype, DType::kF32);
  EXPECT_EQ(t["b"].shape, std::vector<int64_t>{3});
  EXPECT_EQ(t["b"].data, img.data() + 8 + kGood.size() + 8);
  EXPECT_EQ(t["b"].nbytes, 6u);
}

TEST(Safetensors, RejectsBrokenFilesWithAMessageNamingTheProblem) {
  struct Case {
    std::vector<uint8_t> bytes;
    std::string needle;
  };
  std::vector<Case> cases;
  cases.push_back({{1, 2, 3}, "truncated"});
  auto img = image(kGood, 14);
  cases.push_back({std::vector<uint8_t>(img.begin(), img.end() - 1), "past the end"});  // truncated data
  auto huge = img;
  uint64_t big = 1ull << 40;
  std::memcpy(huge.data(), &big, 8);
  cases.push_back({huge, "exceeds the file size"});
  cases.push_back({image("{not json", 0), "not valid JSON"});
  cases.push_back({image("[1,2]", 0), "JSON object"});
  cases.push_back({image(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8), "unsupported dtype"});
  cases.push_back({image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12"});
  cases.push_back({image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                   "overlap"});
  cases.push_back({image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "data_offsets"});
  cases.push_back({image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "non-negative"});
  cases.push_back({image(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8), "missing shape"});
  cases.push_back({image(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8), "missing dtype"});
  cases.push_back({image(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "data_offsets"});
  cases.push_back({image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8), "too large"});
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string msg = error_of(cases[i].bytes);
    EXPECT_NE(msg.find(cases[i].needle), std::string::npos) << "case " << i << ": '" << msg << "'";
    EXPECT_NE(msg.find("x.safetensors"), std::string::npos) << "case " << i << " must name the file";
  }
}

// Random mutations of a valid image (byte flips, truncations, header splices) must parse or
// throw Error — never crash or read out of bounds (run it under the asan preset too).
TEST(Safetensors, SurvivesRandomMutations) {
  std::mt19937 rng(1234);
  const auto base = image(kGood, 14);
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    auto img = base;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 3) {
        case 0: img[rng() % img.size()] = uint8_t(rng()); break;
        case 1: img.resize(rng() % (img.size() + 1)); break;
        case 2: if (img.size() > 9) img[8 + rng() % (img.size() - 8)] = "{}[],:\"0123456789"[rng() % 17]; break;
      }
      if (img.empty()) break;
    }
    try {
      auto t = parse_safetensors(img.data(), img.size(), "fuzz");
      for (auto& [name, info] : t) {
        ASSERT_GE(info.data, img.data());
        ASSERT_LE(info.data + info.nbytes, img.data() + img.size());
      }
      ++parsed;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);  // the mutations do break files...
  EXPECT_GT(parsed, 10);      // ...and some (e.g. data-byte flips) leave them valid
}

TEST(Safetensors, WriterRoundTrips) {
  SafetensorsWriter w;
  w.add("x", DType::kBF16, {2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  w.add("s", DType::kF32, {1}, {0, 0, 128, 63});
  std::string path = dsinfer::testing::scratch_path("rt.safetensors");
  w.write(path);
  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo& x = f.tensors().at("x");
  EXPECT_EQ(x.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(x.data[7], 8);
  float s;
  std::memcpy(&s, f.tensors().at("s").data, 4);
  EXPECT_EQ(s, 1.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data) % 8, 0u) << "data section must stay 8-byte aligned";
}

}  // namespace
}  // namespace dsinfer::model
