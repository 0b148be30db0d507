// Copies of a test checkpoint with one BF16 tensor row rewritten: models that load and then
// compute what a test needs (a NaN activation, a chosen token winning the argmax), so the paths
// that handle a broken model can be driven end to end.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scratch.h"

namespace dsinfer::testing {

// A copy of checkpoint directory `src` (every file: config, weights, tokenizer) as
// scratch_path(name).
inline std::string copy_checkpoint(const std::string& src, const std::string& name) {
  namespace fs = std::filesystem;
  const std::string dst = scratch_path(name);
  fs::remove_all(dst);
  fs::create_directories(dst);
  for (auto& f : fs::directory_iterator(src)) fs::copy_file(f.path(), dst / f.path().filename());
  return dst;
}

// Rewrites row `row` of the 2-D BF16 tensor `tensor` in dir/model.safetensors in place: `edit`
// gets the row's raw BF16 values and changes them.
inline void edit_bf16_row(const std::string& dir, const std::string& tensor, int64_t row,
                          const std::function<void(std::vector<uint16_t>&)>& edit) {
  std::fstream f(dir + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << dir;
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  f.read(header.data(), std::streamsize(n));
  const auto h = nlohmann::json::parse(header)[tensor];
  ASSERT_EQ(h["dtype"], "BF16") << tensor;
  const int64_t width = h["shape"][1].get<int64_t>();
  const auto at = std::streamoff(8 + n + h["data_offsets"][0].get<uint64_t>() + uint64_t(row * width) * 2);
  std::vector<uint16_t> values(static_cast<size_t>(width));
  f.seekg(at);
  f.read(reinterpret_cast<char*>(values.data()), std::streamsize(width * 2));
  edit(values);
  f.seekp(at);
  f.write(reinterpret_cast<const char*>(values.data()), std::streamsize(width * 2));
  ASSERT_TRUE(f.good()) << "rewriting " << tensor << " row " << row;
}

// The BF16 values of row `row` of `tensor` (to copy one row onto another).
inline std::vector<uint16_t> bf16_row(const std::string& dir, const std::string& tensor, int64_t row) {
  std::vector<uint16_t> out;
  edit_bf16_row(dir, tensor, row, [&](std::vector<uint16_t>& v) { out = v; });
  return out;
}

// A copy of `src` whose embedding row `token` is NaN: any sequence holding that token gets NaN
// logits, every other sequence is unaffected (batch invariance). Load it with the weight scan
// off, as a model whose activations overflow would behave.
inline std::string model_with_nan_token(const std::string& src, int32_t token) {
  const std::string dst = copy_checkpoint(src, "nan-token-" + std::to_string(token));
  edit_bf16_row(dst, "model.embed_tokens.weight", token, [](std::vector<uint16_t>& v) {
    for (uint16_t& x : v) x = 0x7fc0;  // a quiet NaN
  });
  return dst;
}

}  // namespace dsinfer::testing
