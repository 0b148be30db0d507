// Request validation against hostile or unusual clients (issue 12): integer fields at the edge
// of int64, stop-string caps, message roles and content parts, nesting, and a model without a
// usable chat template.
#include <gtest/gtest.h>

#include "test_helpers.h"

#include <fstream>
#include <sstream>
#include <string>

#include "serve/api_error.h"
#include "serve/protocol.h"

namespace dsinfer::serve {
namespace {

const tokenizer::Tokenizer& tok() { return dsinfer::testing::deepseek_v3_tokenizer(); }

ProtocolContext ctx(const tokenizer::Tokenizer& t = tok()) {
  ProtocolContext c;
  c.tokenizer = &t;
  c.model_names = {"m"};
  c.limits = {int64_t(t.vocab_size()), 4096, 100000};
  return c;
}

struct Outcome {
  int status = 200;
  std::string param, message, type, code;
};

Outcome outcome(Endpoint ep, const std::string& body, const ProtocolContext& c = ctx()) {
  Outcome o;
  try {
    parse_request(ep, body, c);
  } catch (const ApiError& e) {
    o = {e.status, e.param, e.what(), e.type, e.code};
  }
  return o;
}

std::string chat(const std::string& extra, const std::string& messages = R"([{"role":"user","content":"x"}])") {
  return R"({"model":"m","messages":)" + messages + (extra.empty() ? "" : "," + extra) + "}";
}

TEST(ProtocolLimits, IntegerFieldsAtTheEdgeOfInt64AreCheckedWithoutOverflow) {
  struct Case {
    std::string extra;
    int status;
    const char* param;
  };
  const Case cases[] = {
      // len + max_tokens overflowed and passed; the engine thread then aborted the process.
      {R"("max_tokens":9223372036854775807)", 400, "max_tokens"},
      {R"("max_tokens":9223372036854775000)", 400, "max_tokens"},
      {R"("max_completion_tokens":9223372036854775807)", 400, "max_completion_tokens"},
      {R"("max_tokens":18446744073709551615)", 400, "max_tokens"},
      {R"("max_tokens":1e300)", 400, "max_tokens"},  // a double outside int64: undefined to convert
      {R"("max_tokens":-9223372036854775808)", 400, "max_tokens"},
      {R"("n":9223372036854775807)", 400, "n"},
      {R"("n":1e19)", 400, "n"},
      {R"("top_logprobs":9223372036854775807,"logprobs":true)", 400, "top_logprobs"},
      {R"("top_logprobs":-9223372036854775808,"logprobs":true)", 400, "top_logprobs"},
      {R"("top_k":-9223372036854775808)", 400, "top_k"},
      {R"("top_k":9223372036854775807)", 200, ""},  // more than the vocabulary: all of it
      {R"("seed":18446744073709551615)", 200, ""},
      {R"("seed":-9223372036854775808)", 200, ""},
      {R"("seed":1.5)", 400, "seed"},
      {R"("temperature":1e-40,"top_k":5)", 200, ""},  // greedy, see Sampler
      {R"("temperature":1e308)", 400, "temperature"},
  };
  for (const Case& c : cases) {
    Outcome o = outcome(Endpoint::kChat, chat(c.extra));
    EXPECT_EQ(o.status, c.status) << c.extra << ": " << o.message;
    EXPECT_EQ(o.param, c.param) << c.extra;
  }
  Outcome o = outcome(Endpoint::kCompletion, R"({"model":"m","prompt":"x","logprobs":9223372036854775807})");
  EXPECT_EQ(o.status, 400);
  EXPECT_EQ(o.param, "logprobs");
  o = outcome(Endpoint::kCompletion, R"({"model":"m","prompt":"x","max_tokens":9223372036854775807})");
  EXPECT_EQ(o.status, 400);
  EXPECT_EQ(o.code, "context_length_exceeded");
}

std::string stops(size_t count, size_t bytes) {
  std::string s = "[";
  for (size_t i = 0; i < count; ++i) s += (i ? ",\"" : "\"") + std::string(bytes, char('a' + i % 26)) + "\"";
  return s + "]";
}

TEST(ProtocolLimits, StopStringsAreCappedInCountAndLength) {
  auto r = parse_request(Endpoint::kChat, chat("\"stop\":" + stops(engine::kMaxStopStrings, engine::kMaxStopBytes)), ctx());
  EXPECT_EQ(r.params().stop.size(), engine::kMaxStopStrings);
  Outcome o = outcome(Endpoint::kChat, chat("\"stop\":" + stops(engine::kMaxStopStrings + 1, 3)));
  EXPECT_EQ(o.status, 400);
  EXPECT_EQ(o.param, "stop");
  EXPECT_NE(o.message.find("at most 16"), std::string::npos) << o.message;
  o = outcome(Endpoint::kChat, chat("\"stop\":" + stops(1, engine::kMaxStopBytes + 1)));
  EXPECT_EQ(o.status, 400);
  EXPECT_NE(o.message.find("at most 1024 bytes"), std::string::npos) << o.message;
  o = outcome(Endpoint::kCompletion, R"({"model":"m","prompt":"x","stop":")" + std::string(100000, 'z') + "\"}");
  EXPECT_EQ(o.status, 400);
  EXPECT_EQ(o.param, "stop");
}

TEST(ProtocolLimits, UnknownRolesAre400NamingTheRole) {
  Outcome o = outcome(Endpoint::kChat, chat("", R"([{"role":"user","content":"a"},{"role":"function","content":"b"}])"));
  EXPECT_EQ(o.status, 400);
  EXPECT_EQ(o.param, "messages");
  EXPECT_NE(o.message.find("role 'function'"), std::string::npos) << o.message;
}

TEST(ProtocolLimits, ContentArraysOfTextPartsAreAccepted) {
  auto parts = parse_request(
      Endpoint::kChat,
      chat("", R"([{"role":"user","content":[{"type":"text","text":"Hello "},{"type":"text","text":"there"}]}])"), ctx());
  auto plain = parse_request(Endpoint::kChat, chat("", R"([{"role":"user","content":"Hello there"}])"), ctx());
  EXPECT_EQ(parts.prompt(), plain.prompt());
  Outcome o = outcome(Endpoint::kChat, chat("", R"([{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}])"));
  EXPECT_EQ(o.status, 400);
  EXPECT_EQ(o.param, "messages");
  EXPECT_NE(o.message.find("type 'image_url'"), std::string::npos) << o.message;
}

TEST(ProtocolLimits, DeepNestingIs400NotAStackOverflow) {
  // Tool-call arguments as an object nested 70,000 deep were parsed, then dump() recursed once
  // per level while rendering the chat template.
  std::string deep = std::string(70000, '[') + std::string(70000, ']');
  std::string msgs = R"([{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":)" +
                     deep + "}}}]}]";
  Outcome o = outcome(Endpoint::kChat, chat("", msgs));
  EXPECT_EQ(o.status, 400);
  EXPECT_NE(o.message.find("nests JSON deeper than"), std::string::npos) << o.message;
  o = outcome(Endpoint::kCompletion, R"({"model":"m","prompt":"x","metadata":)" + deep + "}");
  EXPECT_EQ(o.status, 400);
  // Ordinary nesting in arguments still works.
  auto r = parse_request(Endpoint::kChat,
                         chat("", R"([{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":[[{"b":1}]]}}}]}])"),
                         ctx());
  EXPECT_FALSE(r.prompt().empty());
}

TEST(ProtocolLimits, AModelWithoutAUsableChatTemplateAnswersChatAsAServerError) {
  std::ifstream in(std::string(DSINFER_ASSETS_DIR) + "/tokenizer/deepseek-v3/tokenizer.json", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  for (const char* config : {R"({"bos_token": "<｜begin▁of▁sentence｜>"})", R"({"chat_template": "{{ messages }}"})"}) {
    auto t = tokenizer::Tokenizer::from_json(ss.str(), config);
    ASSERT_NE(t.chat_template_problem(), "");
    // Not the client's fault: a server error saying what to use instead, even for a
    // request that is otherwise malformed.
    for (const std::string& body : {chat(""), std::string(R"({"model":"m"})")}) {
      Outcome o = outcome(Endpoint::kChat, body, ctx(t));
      EXPECT_EQ(o.status, 501) << config;
      EXPECT_EQ(o.type, "server_error");
      EXPECT_EQ(o.code, "chat_template_unavailable");
      EXPECT_NE(o.message.find("/v1/completions"), std::string::npos) << o.message;
    }
    EXPECT_EQ(outcome(Endpoint::kCompletion, R"({"model":"m","prompt":"hi"})", ctx(t)).status, 200);
  }
}

}  // namespace
}  // namespace dsinfer::serve
