// The real DeepSeek-V3 tokenizer: ids checked against Hugging Face's (values produced with npm
// `tokenizers` 0.23.2; the full corpus comparison is tokenizer_exactness_vs_hf), decoding, the
// streaming detokenizer, the chat template and the errors a user can hit.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/streaming_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

const Tokenizer& deepseek() {
  static const Tokenizer t = Tokenizer::from_dir(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3");
  return t;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(DeepSeek, EncodesLikeHuggingFace) {
  const Tokenizer& t = deepseek();
  EXPECT_EQ(t.encode("Hello world! 12345 你好世界 <｜User｜>hi<｜end▁of▁sentence｜>"),
            (Ids{19923, 2058, 3, 223, 6895, 1883, 223, 30594, 3427, 223, 128803, 6366, 1}));
  EXPECT_EQ(t.encode("  a\r\n\tb  "), (Ids{223, 260, 204, 201, 37496, 262}));
  EXPECT_EQ(t.encode(""), Ids{});
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.token_id("<｜Assistant｜>"), 128804);
  EXPECT_EQ(t.token_id("no such token"), -1);
  EXPECT_EQ(t.vocab_size(), 128815u);
  EXPECT_TRUE(t.is_special(0));
  EXPECT_FALSE(t.is_special(128803));  // <｜User｜> is an added token but not a special one
}

TEST(DeepSeek, ConcurrentEncodesAgreeWithASingleThread) {
  // The server encodes from many threads at once; caches and regex state are per thread.
  const Tokenizer& t = deepseek();
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("request " + std::to_string(i * 7919) + " 你好 мир 😀 text" + std::string(i % 5, ' '));
  std::vector<Ids> expected;
  for (auto& s : texts) expected.push_back(t.encode(s));
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      Tokenizer copy = t;  // copies share the loaded tables
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) bad[k] += copy.encode(texts[(i + k * 31) % texts.size()]) != expected[(i + k * 31) % texts.size()];
    });
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(bad[k], 0) << "thread " << k;
}

TEST(DeepSeek, InvalidUtf8IsReplacedLikeHuggingFace) {
  // Hugging Face only ever sees text, so broken bytes arrive as U+FFFD; the ids must agree.
  const Tokenizer& t = deepseek();
  EXPECT_EQ(t.encode("x\xF0\x9F\x98y\xFF"), t.encode("x\xEF\xBF\xBDy\xEF\xBF\xBD"));
}

TEST(DeepSeek, DecodeAndSkipSpecialTokens) {
  const Tokenizer& t = deepseek();
  std::string text = "Hello world! 12345 你好世界 <｜User｜>hi<｜end▁of▁sentence｜>";
  Ids ids = t.encode(text);
  EXPECT_EQ(t.decode(ids), text);
  EXPECT_EQ(t.decode(ids, /*skip_special_tokens=*/true), "Hello world! 12345 你好世界 <｜User｜>hi");
  EXPECT_EQ(t.decode({2808, 90}), "\xEF\xBF\xBDx");
  EXPECT_EQ(t.decode({175}), "\xEF\xBF\xBD");  // a lone lead byte
  EXPECT_NE(error_of([&] { t.decode({5, 128815}); }).find("token id 128815 is out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { t.decode({-1}); }).find("token id -1 is out of range"), std::string::npos);
}

TEST(Streaming, EmojiSplitAcrossTokensWaitsForTheWholeCharacter) {
  const Tokenizer& t = deepseek();
  std::string text = "ok 👍🏽 done";
  Ids ids = t.encode(text);
  StreamingDetokenizer d(t);
  std::string out;
  int partial_pushes = 0;
  for (int32_t id : ids) {
    std::string piece = d.push(id);
    EXPECT_TRUE(is_valid_utf8(piece));
    if (piece.empty()) ++partial_pushes;
    out += piece;
  }
  out += d.flush();
  EXPECT_EQ(out, text);
  EXPECT_GT(partial_pushes, 0);  // some token ended inside the emoji and produced nothing yet
}

TEST(Streaming, RandomIdStreamsMatchDecodeAndNeverBreakACharacter) {
  const Tokenizer& t = deepseek();
  std::mt19937 rng(123);
  for (int trial = 0; trial < 300; ++trial) {
    Ids ids(rng() % 40);
    for (auto& id : ids) id = rng() % 20 == 0 ? int32_t(128000 + rng() % 815) : int32_t(rng() % 128000);
    for (bool skip : {false, true}) {
      StreamingDetokenizer d(t, skip);
      std::string out;
      for (int32_t id : ids) {
        std::string piece = d.push(id);
        ASSERT_TRUE(is_valid_utf8(piece));
        out += piece;
      }
      out += d.flush();
      ASSERT_EQ(out, t.decode(ids, skip)) << "trial " << trial;
    }
  }
}

TEST(Streaming, OutOfRangeIdThrowsAndKeepsState) {
  const Tokenizer& t = deepseek();
  Ids ids = t.encode("😀");
  ASSERT_GT(ids.size(), 1u);
  StreamingDetokenizer d(t);
  EXPECT_EQ(d.push(ids[0]), "");
  EXPECT_THROW(d.push(999999), Error);
  std::string out;
  for (size_t i = 1; i < ids.size(); ++i) out += d.push(ids[i]);
  EXPECT_EQ(out + d.flush(), "😀");
}

TEST(ChatTemplate, RendersTheDeepSeekFormat) {
  const Tokenizer& t = deepseek();
  std::vector<ChatMessage> m = {{"system", "Be brief.", "", {}, ""}, {"user", "Hi", "", {}, ""},
                                {"assistant", "Hello.", "", {}, ""}, {"user", "Bye", "", {}, ""}};
  EXPECT_EQ(t.render_chat(m, true),
            "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜>Hello.<｜end▁of▁sentence｜>"
            "<｜User｜>Bye<｜Assistant｜>");
  ChatMessage call{"assistant", "", "", {{"call_1", "function", "get_weather", "{\"city\": \"Paris\"}"}}, ""};
  ChatMessage result{"tool", "18C", "", {}, "call_1"};
  EXPECT_EQ(render_chat({{"user", "Weather?", "", {}, ""}, call, result}, true),
            "<｜begin▁of▁sentence｜><｜User｜>Weather?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
            "<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁outputs▁begin｜>"
            "<｜tool▁output▁begin｜>18C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");
  EXPECT_TRUE(is_deepseek_v3_template(t.chat_template()));
}

TEST(ChatTemplate, MessagesFromJsonAndTheirErrors) {
  auto m = chat_messages_from_json(nlohmann::json::parse(
      R"([{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":1}}}]}])"));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].content, "");
  EXPECT_EQ(m[0].tool_calls.at(0).arguments, "{\"a\":1}");
  EXPECT_NE(error_of([] { chat_messages_from_json(nlohmann::json::parse(R"([{"content":"x"}])")); })
                .find("message 0 has no \"role\""),
            std::string::npos);
  EXPECT_NE(error_of([] { chat_messages_from_json(nlohmann::json::parse(R"([{"role":"user","content":[1]}])")); })
                .find("message 0 content part 0 must be a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of([] { chat_messages_from_json(nlohmann::json::parse(R"([{"role":"user","content":7}])")); })
                .find("\"content\" must be a string or an array of content parts"),
            std::string::npos);
  EXPECT_NE(error_of([] { chat_messages_from_json(nlohmann::json::parse(R"({"role":"user"})")); })
                .find("must be a JSON array"),
            std::string::npos);
}

TEST(ChatTemplate, UnknownRolesAreRefusedNotDropped) {
  // The template renders nothing for a role it does not know: the model would silently never
  // see that message.
  std::string msg = error_of([] {
    chat_messages_from_json(nlohmann::json::parse(R"([{"role":"user","content":"a"},{"role":"function","content":"x"}])"));
  });
  EXPECT_NE(msg.find("message 1 has role 'function'"), std::string::npos) << msg;
  auto dev = chat_messages_from_json(nlohmann::json::parse(R"([{"role":"developer","content":"Be brief."}])"));
  EXPECT_EQ(dev.at(0).role, "system");  // OpenAI's newer name for it
}

TEST(ChatTemplate, ContentMayBeAnArrayOfTextParts) {
  auto m = chat_messages_from_json(nlohmann::json::parse(
      R"([{"role":"user","content":[{"type":"text","text":"Hello, "},{"type":"text","text":"world"}]},
          {"role":"system","content":[]}])"));
  EXPECT_EQ(m.at(0).content, "Hello, world");
  EXPECT_EQ(m.at(1).content, "");
  std::string msg = error_of([] {
    chat_messages_from_json(nlohmann::json::parse(
        R"([{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"x"}}]}])"));
  });
  EXPECT_NE(msg.find("message 0 content part 1 has type 'image_url'"), std::string::npos) << msg;
  EXPECT_NE(error_of([] {
              chat_messages_from_json(nlohmann::json::parse(R"([{"role":"user","content":[{"type":"text"}]}])"));
            }).find("has no \"text\""),
            std::string::npos);
}

TEST(ChatTemplate, TheShippedTemplatePassesTheProbe) {
  EXPECT_EQ(deepseek().chat_template_problem(), "");
  EXPECT_EQ(deepseek().probe_chat_template(), "");
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("dsinfer_tok_test_" + std::to_string(::getpid()) + "_" +
                                                      std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }

 private:
  std::filesystem::path path_;
  static inline int counter_ = 0;
};

TEST(FromDir, ErrorsNameTheFileAndTheProblem) {
  TempDir empty;
  EXPECT_NE(error_of([&] { Tokenizer::from_dir(empty.path()); }).find("no tokenizer.json in " + empty.path()),
            std::string::npos);
  TempDir bad;
  bad.write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", ");
  std::string msg = error_of([&] { Tokenizer::from_dir(bad.path()); });
  EXPECT_NE(msg.find(bad.path() + "/tokenizer.json is not valid JSON"), std::string::npos) << msg;
  TempDir unsupported;
  unsupported.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                                          "pre_tokenizer": {"type": "BertPreTokenizer"}})");
  msg = error_of([&] { Tokenizer::from_dir(unsupported.path()); });
  EXPECT_NE(msg.find(unsupported.path() + "/tokenizer.json: pre_tokenizer type 'BertPreTokenizer' is not supported"),
            std::string::npos)
      << msg;
  TempDir bad_config;
  bad_config.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  bad_config.write("tokenizer_config.json", "{oops");
  msg = error_of([&] { Tokenizer::from_dir(bad_config.path()); });
  EXPECT_NE(msg.find("tokenizer_config.json is not valid JSON"), std::string::npos) << msg;
  TempDir no_template;
  no_template.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  Tokenizer t = Tokenizer::from_dir(no_template.path());
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_EQ(t.encode("aa"), (Ids{0, 0}));
  EXPECT_NE(error_of([&] { t.render_chat({}, true); }).find("no chat_template"), std::string::npos);
  EXPECT_NE(t.chat_template_problem().find("no chat_template"), std::string::npos) << t.chat_template_problem();
  TempDir other_template;
  other_template.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  other_template.write("tokenizer_config.json", R"({"chat_template": "{{ messages }}"})");
  Tokenizer o = Tokenizer::from_dir(other_template.path());
  EXPECT_NE(error_of([&] { o.render_chat({}, true); }).find("not the DeepSeek-V3 one"), std::string::npos);
  EXPECT_NE(o.chat_template_problem().find("not the DeepSeek-V3 one"), std::string::npos);
}

TEST(FromDir, DeepNestingAndNonRegularFilesAreErrorsNamingTheFile) {
  TempDir deep;
  deep.write("tokenizer.json", std::string(100000, '[') + std::string(100000, ']'));
  std::string msg = error_of([&] { Tokenizer::from_dir(deep.path()); });
  EXPECT_NE(msg.find(deep.path() + "/tokenizer.json nests JSON deeper than"), std::string::npos) << msg;
  TempDir deep_config;
  deep_config.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  deep_config.write("tokenizer_config.json", "{\"x\":" + std::string(5000, '[') + std::string(5000, ']') + "}");
  msg = error_of([&] { Tokenizer::from_dir(deep_config.path()); });
  EXPECT_NE(msg.find("tokenizer_config.json nests JSON deeper than"), std::string::npos) << msg;
  TempDir dir_config;
  dir_config.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  std::filesystem::create_directory(dir_config.path() + "/tokenizer_config.json");
  msg = error_of([&] { Tokenizer::from_dir(dir_config.path()); });
  EXPECT_NE(msg.find("tokenizer_config.json is not a regular file"), std::string::npos) << msg;
}

}  // namespace
}  // namespace dsinfer::tokenizer
