// The BPE model of tokenizer.json: a vocabulary, ranked merges and the options Hugging Face
// supports (unk_token with fuse_unk, continuing_subword_prefix, end_of_word_suffix,
// ignore_merges, byte_fallback; dropout is rejected because it makes encoding random). For a
// byte-level tokenizer the vocabulary is converted to raw bytes at load time, so a word is
// merged straight from its bytes. Words are merged lowest rank first, leftmost first among equal
// ranks, and the result of each distinct word is kept in a per-thread cache.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/flat_map.h"

namespace dsinfer::tokenizer {

class BpeModel {
 public:
  // model: the "model" object of tokenizer.json. byte_level: the pre-tokenizer maps bytes to the
  // GPT-2 alphabet, so words arrive as raw bytes. Throws Error for anything malformed.
  BpeModel(const nlohmann::json& model, bool byte_level);

  // Appends the ids of one pre-tokenized word.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  // Vocabulary in tokenizer.json form ("Ġthe"); -1 when absent.
  int32_t token_to_id(std::string_view token) const { return vocab_.find(token); }
  // Token text as stored in tokenizer.json; empty for ids the vocabulary lacks.
  const std::string& id_to_token(int32_t id) const;
  // One more than the largest id.
  size_t size() const { return id_to_token_.size(); }

 private:
  StringMap vocab_;        // tokenizer.json form
  StringMap units_;        // the form words arrive in (raw bytes when byte_level)
  std::vector<std::string> id_to_token_;
  PairMap merges_;
  int32_t byte_id_[256];   // byte_level: id of each single byte, -1 when the vocabulary lacks it
  int32_t byte_fallback_id_[256];
  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  int32_t unk_id_ = -1;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  std::string prefix_unit_, suffix_unit_;  // the same in the form words arrive in
  uint64_t instance_ = 0;        // keys this model's entries in the per-thread word cache

  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void initial_symbols(std::string_view word, std::vector<int32_t>& symbols) const;
};

}  // namespace dsinfer::tokenizer
