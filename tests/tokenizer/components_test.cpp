// Unit tests of the tokenizer's parts on tiny hand-made tokenizer.json files, where every expected
// id sequence can be worked out by hand from the merges.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/streaming_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// A character-level BPE (no ByteLevel): vocab a b c d ab abc aa aaaa, merges ranked as listed.
json tiny(json merges = json::array({"a b", "ab c", "a a", "aa aa"})) {
  return {{"model",
           {{"type", "BPE"},
            {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"d", 3}, {"ab", 4}, {"abc", 5}, {"aa", 6}, {"aaaa", 7},
                       {"<unk>", 8}, {"-", 9}}},
            {"merges", merges}}},
          {"added_tokens", json::array()}};
}

Tokenizer load(const json& j) { return Tokenizer::from_json(j.dump()); }

TEST(Bpe, MergesLowestRankFirst) {
  Tokenizer t = load(tiny());
  EXPECT_EQ(t.encode("abc"), (Ids{5}));     // a b -> ab (rank 0), ab c -> abc (rank 1)
  EXPECT_EQ(t.encode("abd"), (Ids{4, 3}));
  EXPECT_EQ(t.encode("aaa"), (Ids{6, 0}));  // equal ranks: the leftmost pair merges first
  EXPECT_EQ(t.encode("aaaa"), (Ids{7}));
  EXPECT_EQ(t.encode("aaaaa"), (Ids{7, 0}));
}

TEST(Bpe, LongWordTakesTheHeapPathWithTheSameResult) {
  Tokenizer t = load(tiny());
  // 602 a's: 301 "aa", then 150 "aaaa" and one "aa" left over at the end.
  Ids ids = t.encode(std::string(602, 'a'));
  ASSERT_EQ(ids.size(), 151u);
  for (size_t i = 0; i < 150; ++i) EXPECT_EQ(ids[i], 7);
  EXPECT_EQ(ids[150], 6);
}

TEST(Bpe, MergesAsPairsAndIgnoreMerges) {
  json j = tiny(json::array({json::array({"a", "b"}), json::array({"ab", "c"})}));
  EXPECT_EQ(load(j).encode("abc"), (Ids{5}));
  // With ignore_merges a word found whole in the vocabulary is taken as it is.
  json k = tiny(json::array({"a a"}));
  EXPECT_EQ(load(k).encode("abc"), (Ids{0, 1, 2}));
  k["model"]["ignore_merges"] = true;
  EXPECT_EQ(load(k).encode("abc"), (Ids{5}));
}

TEST(Bpe, UnknownCharactersAreDroppedOrUnk) {
  json j = tiny();
  // No unk_token: the characters are dropped, as Hugging Face does, so "a" and "b" meet and merge.
  EXPECT_EQ(load(j).encode("axxb"), (Ids{4}));
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(load(j).encode("axxb"), (Ids{0, 8, 8, 1}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(load(j).encode("axxb"), (Ids{0, 8, 1}));
}

TEST(Bpe, ByteFallback) {
  json j = tiny();
  j["model"]["byte_fallback"] = true;
  j["model"]["vocab"]["<0xC3>"] = 10;
  j["model"]["vocab"]["<0xA9>"] = 11;
  EXPECT_EQ(load(j).encode("a\xC3\xA9"), (Ids{0, 10, 11}));  // "é" is not in the vocabulary
}

TEST(Bpe, MalformedModelsAreRejectedWithTheReason) {
  auto message = [](const json& j) {
    try {
      load(j);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(tiny(json::array({"a b c"}))).find("is not two tokens"), std::string::npos);
  EXPECT_NE(message(tiny(json::array({"a z"}))).find("'z', which is not in the vocabulary"), std::string::npos);
  EXPECT_NE(message(tiny(json::array({"b a"}))).find("makes 'ba'"), std::string::npos);
  json d = tiny();
  d["model"]["dropout"] = 0.1;
  EXPECT_NE(message(d).find("dropout"), std::string::npos);
  json u = tiny();
  u["model"]["unk_token"] = "<nope>";
  EXPECT_NE(message(u).find("'<nope>' is not in the vocabulary"), std::string::npos);
  json w = tiny();
  w["model"]["type"] = "WordPiece";
  EXPECT_NE(message(w).find("model type 'WordPiece' is not supported"), std::string::npos);
  json p = tiny();
  p["pre_tokenizer"] = {{"type", "Metaspace"}};
  EXPECT_NE(message(p).find("pre_tokenizer type 'Metaspace' is not supported"), std::string::npos);
  json n = tiny();
  n["normalizer"] = {{"type", "BertNormalizer"}};
  EXPECT_NE(message(n).find("normalizer type 'BertNormalizer' is not supported"), std::string::npos);
  json dec = tiny();
  dec["decoder"] = {{"type", "WordPiece"}};
  EXPECT_NE(message(dec).find("decoder type 'WordPiece' is not supported"), std::string::npos);
  json r = tiny();
  r["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
  EXPECT_NE(message(r).find("does not compile"), std::string::npos);
  EXPECT_NE(message(json::array()).find("must hold a JSON object"), std::string::npos);
  try {
    Tokenizer::from_json("{\"model\": ");
    ADD_FAILURE() << "truncated JSON accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not valid JSON"), std::string::npos);
  }
}

// Hugging Face's documented example of every split behavior, on "the-final--countdown".
Ids split_ids(const char* behavior, bool invert = false) {
  json j = tiny();
  j["model"]["vocab"] = json::object();
  const char* words[] = {"the", "-", "final", "countdown", "the-", "final-", "-final", "-countdown", "--"};
  for (int i = 0; i < 9; ++i) j["model"]["vocab"][words[i]] = i;
  j["model"]["merges"] = json::array();
  j["model"]["ignore_merges"] = true;  // each piece is one vocabulary word
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
  return load(j).encode("the-final--countdown");
}

TEST(PreTokenizer, BadFieldsNameTheirPathInsideASequence) {
  auto message = [](const json& pre) {
    json j = tiny();
    j["pre_tokenizer"] = pre;
    try {
      load(j);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  json split = {{"type", "Split"}, {"pattern", {{"String", "-"}}}};
  json seq = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}}, split}}};
  EXPECT_EQ(message(seq), "tokenizer.json: missing field 'pre_tokenizer.pretokenizers[1].behavior'");
  seq["pretokenizers"][1]["behavior"] = "Merged";
  EXPECT_NE(message(seq).find("field 'pre_tokenizer.pretokenizers[1].behavior' must be one of \"Removed\", "), std::string::npos)
      << message(seq);
  seq["pretokenizers"][1]["behavior"] = "Removed";
  seq["pretokenizers"][0]["individual_digits"] = "yes";
  EXPECT_EQ(message(seq),
            "tokenizer.json: field 'pre_tokenizer.pretokenizers[0].individual_digits' must be true or false, got \"yes\"");
  seq["pretokenizers"][0]["individual_digits"] = true;
  seq["pretokenizers"][0]["some_new_hf_field"] = 1;  // fields dsinfer does not need are ignored
  EXPECT_EQ(message(seq), "no error");
}

TEST(PreTokenizer, SplitBehaviors) {
  EXPECT_EQ(split_ids("Removed"), (Ids{0, 2, 3}));
  EXPECT_EQ(split_ids("Isolated"), (Ids{0, 1, 2, 1, 1, 3}));
  EXPECT_EQ(split_ids("MergedWithPrevious"), (Ids{4, 5, 1, 3}));
  EXPECT_EQ(split_ids("MergedWithNext"), (Ids{0, 6, 1, 7}));
  EXPECT_EQ(split_ids("Contiguous"), (Ids{0, 1, 2, 8, 3}));
  EXPECT_EQ(split_ids("Removed", /*invert=*/true), (Ids{1, 1, 1}));
  EXPECT_THROW(split_ids("Sideways"), Error);
}

TEST(AddedTokens, FlagsWidenOrSkipMatches) {
  json j = tiny();
  j["model"]["vocab"][" "] = 10;
  j["model"]["vocab"]["x"] = 11;
  auto added = [](int id, const char* content, json flags) {
    json t = {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
              {"normalized", false}, {"special", true}};
    t.update(flags);
    return t;
  };
  // Hugging Face numbers added tokens itself, from the end of the vocabulary (12 ids here) in
  // file order, whatever their "id" fields say; a content already in the vocabulary keeps its id.
  j["added_tokens"] = json::array({added(20, "<s>", json::object()), added(21, "dd", {{"single_word", true}}),
                                   added(22, "<l>", {{"lstrip", true}}), added(23, "<r>", {{"rstrip", true}}),
                                   added(24, "<s>x", json::object()), added(25, "abc", json::object())});
  Tokenizer t = load(j);
  EXPECT_EQ(t.encode("a<s>b"), (Ids{0, 12, 1}));
  EXPECT_EQ(t.encode("<s>x"), (Ids{16}));               // the longest match wins
  EXPECT_EQ(t.encode("a dd b"), (Ids{0, 10, 13, 10, 1}));
  EXPECT_EQ(t.encode("add b"), (Ids{0, 3, 3, 10, 1}));  // inside a word: not a single word
  EXPECT_EQ(t.encode("a  <l>b"), (Ids{0, 14, 1}));      // lstrip swallows the spaces before
  EXPECT_EQ(t.encode("a<r>  b"), (Ids{0, 15, 1}));      // rstrip swallows the spaces after
  EXPECT_EQ(t.encode("xabcx"), (Ids{11, 5, 11}));       // "abc" keeps its vocabulary id 5
  EXPECT_EQ(t.token_id("<r>"), 15);
  EXPECT_EQ(t.token_id("abc"), 5);
  EXPECT_EQ(t.token_id("zzz"), -1);
  EXPECT_EQ(t.vocab_size(), 17u);
  EXPECT_TRUE(t.is_special(12));
  EXPECT_FALSE(t.is_special(0));
}

TEST(Decoder, NoDecoderJoinsWithSpacesAndStreamsTheSame) {
  Tokenizer t = load(tiny());
  EXPECT_EQ(t.decode({5, 3, 7}), "abc d aaaa");  // Hugging Face joins tokens with " " without a decoder
  StreamingDetokenizer d(t);
  std::string out;
  for (int32_t id : Ids{5, 3, 7}) out += d.push(id);
  EXPECT_EQ(out + d.flush(), "abc d aaaa");
  EXPECT_THROW(t.decode({10}), Error);
}

TEST(Utf8, LossyRepairReplacesMaximalSubparts) {
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98" "b"), "a\xEF\xBF\xBD" "b");  // truncated emoji: one U+FFFD
  EXPECT_EQ(utf8_lossy("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");   // overlong: two
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: three
  EXPECT_EQ(utf8_lossy("\xE4\xBD\xA0"), "\xE4\xBD\xA0");
  EXPECT_TRUE(is_valid_utf8("plain ascii and \xE4\xBD\xA0"));
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_EQ(utf8_emittable_prefix("ab\xF0\x9F"), 2u);
  EXPECT_EQ(utf8_emittable_prefix("ab\xFF"), 3u);  // invalid, not pending: emit (as U+FFFD) now
  EXPECT_EQ(utf8_emittable_prefix("ab\xE4\xBD\xA0"), 5u);
}

TEST(Unicode, NormalizationForms) {
  EXPECT_EQ(unicode_normalize("e\xCC\x81", false, true), "\xC3\xA9");  // e + combining acute -> é
  EXPECT_EQ(unicode_normalize("\xC3\xA9", false, false), "e\xCC\x81");
  EXPECT_EQ(unicode_normalize("\xEF\xAC\x81", true, true), "fi");  // the ﬁ ligature
  EXPECT_EQ(unicode_normalize("\xEF\xAC\x81", false, true), "\xEF\xAC\x81");
  EXPECT_EQ(unicode_normalize("\xED\x95\x9C", false, false), "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB");  // 한
  EXPECT_EQ(unicode_normalize("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", false, true), "\xED\x95\x9C");
  // Canonical ordering: dot below (class 220) goes before acute (230).
  EXPECT_EQ(unicode_normalize("a\xCC\x81\xCC\xA3", false, false), "a\xCC\xA3\xCC\x81");
  EXPECT_EQ(unicode_lowercase("A\xCE\xA3\xC4\xB0"), "a\xCF\x83i\xCC\x87");  // AΣİ -> aσi̇
}

}  // namespace
}  // namespace dsinfer::tokenizer

namespace dsinfer::tokenizer {
namespace {

// Added tokens and tokenizer_config.json are read through base/json_fields.h like every other
// file: a bad field names its file and path.
TEST(AddedTokens, BadFieldsNameTheirPath) {
  auto message = [](const json& j, const std::string& config = {}) {
    try {
      Tokenizer::from_json(j.dump(), config);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  json j = tiny();
  j["added_tokens"] = json::array({{{"id", 10}, {"content", "<x>"}, {"lstrip", "yes"}}});
  EXPECT_EQ(message(j), "tokenizer.json: field 'added_tokens[0].lstrip' must be true or false, got \"yes\"");
  j["added_tokens"][0]["lstrip"] = false;
  j["added_tokens"][0].erase("content");
  EXPECT_EQ(message(j), "tokenizer.json: missing field 'added_tokens[0].content'");
  j["added_tokens"][0]["content"] = "<x>";
  EXPECT_EQ(message(j), "no error");
  EXPECT_EQ(message(j, R"({"add_bos_token": "yes"})"),
            "tokenizer_config.json: field 'add_bos_token' must be true or false, got \"yes\"");
  EXPECT_EQ(message(j, R"({"add_bos_token": true, "bos_token": "<x>"})"), "no error");
}

}  // namespace
}  // namespace dsinfer::tokenizer
