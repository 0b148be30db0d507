#include "serve/protocol.h"

#include <gtest/gtest.h>

#include "test_helpers.h"

#include "kernels/cpu_features.h"
#include "serve/api_error.h"
#include "serve/metrics_text.h"
#include "serve/reasoning.h"

namespace dsinfer::serve {
namespace {

const tokenizer::Tokenizer& tok() { return dsinfer::testing::deepseek_v3_tokenizer(); }

ProtocolContext ctx() {
  ProtocolContext c;
  c.tokenizer = &tok();
  c.model_names = {"m", "alias"};
  c.limits = {int64_t(tok().vocab_size()), 4096, 100000};
  return c;
}

int status_of(Endpoint ep, const std::string& body, std::string* param = nullptr) {
  try {
    parse_request(ep, body, ctx());
  } catch (const ApiError& e) {
    if (param) *param = e.param;
    return e.status;
  }
  return 200;
}

TEST(Protocol, ChatRequestIsRenderedAndValidated) {
  auto r = parse_request(Endpoint::kChat,
                         R"({"model":"alias","messages":[{"role":"user","content":"Hi"}],"temperature":0.5,
                             "top_p":0.9,"top_k":40,"seed":7,"stop":"END","stream":true,
                             "stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3})",
                         ctx());
  EXPECT_EQ(r.model, "alias");
  std::string text = tok().decode(r.prompt());
  EXPECT_EQ(text, "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>");
  EXPECT_DOUBLE_EQ(r.params().temperature, 0.5);
  EXPECT_EQ(r.params().top_k, 40);
  EXPECT_EQ(*r.params().seed, 7u);
  EXPECT_EQ(r.params().stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.stream && r.include_usage && r.want_logprobs);
  EXPECT_EQ(r.params().logprobs, 3);
  EXPECT_EQ(r.params().max_tokens, 4096 - int64_t(r.prompt().size()));  // chat default: the rest of the context
}

TEST(Protocol, CompletionPromptsAsTextOrIds) {
  auto a = parse_request(Endpoint::kCompletion, R"({"model":"m","prompt":"Hello world"})", ctx());
  EXPECT_EQ(a.prompt(), tok().encode_prompt("Hello world"));  // BOS (add_bos_token), then the text
  EXPECT_EQ(a.prompt().front(), tok().bos_id());
  EXPECT_EQ(a.params().max_tokens, 16);  // OpenAI's completions default
  auto b = parse_request(Endpoint::kCompletion, R"({"model":"m","prompt":[1,2,3],"max_tokens":5,"logprobs":2})", ctx());
  EXPECT_EQ(b.prompt(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(b.params().logprobs, 2);
  auto c = parse_request(Endpoint::kCompletion, R"({"model":"m","prompt":["Hello world"]})", ctx());
  EXPECT_EQ(c.prompt(), a.prompt());
}

TEST(Protocol, BadRequestsNameTheField) {
  struct Case {
    Endpoint ep;
    const char* body;
    int status;
    const char* param;
  };
  const Case cases[] = {
      {Endpoint::kChat, "{", 400, ""},
      {Endpoint::kChat, "[1]", 400, ""},
      {Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}]})", 400, "model"},
      {Endpoint::kChat, R"({"model":"zzz","messages":[{"role":"user","content":"x"}]})", 400, "model"},
      {Endpoint::kChat, R"({"model":"m"})", 400, "messages"},
      {Endpoint::kChat, R"({"model":"m","messages":[]})", 400, "messages"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0})", 400, "max_tokens"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5000})", 400, "max_tokens"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"1"})", 400, "temperature"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"top_p":2})", 400, "top_p"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":0})", 400, "n"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[3]})", 400, "stop"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"top_logprobs":2})", 400, "top_logprobs"},
      {Endpoint::kCompletion, R"({"model":"m"})", 400, "prompt"},
      {Endpoint::kCompletion, R"({"model":"m","prompt":[129999999]})", 400, "prompt"},
      {Endpoint::kCompletion, R"({"model":"m","prompt":"x","logprobs":9})", 400, "logprobs"},
      {Endpoint::kCompletion, R"({"model":"m","prompt":"x","max_tokens":-1})", 400, "max_tokens"},
  };
  for (const auto& c : cases) {
    std::string param;
    EXPECT_EQ(status_of(c.ep, c.body, &param), c.status) << c.body;
    EXPECT_EQ(param, c.param) << c.body;
  }
}

TEST(Protocol, PromptLongerThanTheContextIs400) {
  std::string big(5000 * 2, 'a');
  for (size_t i = 1; i < big.size(); i += 2) big[i] = ' ';
  std::string param;
  EXPECT_EQ(status_of(Endpoint::kCompletion, R"({"model":"m","prompt":")" + big + R"("})", &param), 400);
  EXPECT_EQ(param, "prompt");
}

TEST(Protocol, UsageHasOpenAiAndDeepSeekFields) {
  engine::Usage u{100, 64, 10};
  auto j = usage_json(u);
  EXPECT_EQ(j["total_tokens"], 110);
  EXPECT_EQ(j["prompt_tokens_details"]["cached_tokens"], 64);
  EXPECT_EQ(j["prompt_cache_hit_tokens"], 64);
  EXPECT_EQ(j["prompt_cache_miss_tokens"], 36);
  EXPECT_FALSE(j.contains("prompt_cache_hit_disk_tokens")) << "only when the disk tier gave some";
  engine::Usage d{100, 64, 10, 32};
  EXPECT_EQ(usage_json(d)["prompt_cache_hit_disk_tokens"], 32);
  EXPECT_EQ(usage_json(d)["prompt_cache_hit_tokens"], 64) << "disk hits are hits";
}

TEST(Protocol, ErrorBodyIsOpenAiShaped) {
  auto j = nlohmann::json::parse(error_body(429, "slow down", "rate_limit_error", "", "rate_limit_exceeded"));
  EXPECT_EQ(j["error"]["message"], "slow down");
  EXPECT_EQ(j["error"]["type"], "rate_limit_error");
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_EQ(j["error"]["code"], "rate_limit_exceeded");
}

std::pair<std::string, std::string> split_all(const std::vector<std::string>& pieces, bool opened = false) {
  ReasoningSplitter s(opened);
  std::string r, c;
  for (const auto& p : pieces) s.push(p, r, c);
  s.flush(r, c);
  return {r, c};
}

TEST(Reasoning, SplitsThinkBlocksEvenWhenTagsAreCutAcrossPieces) {
  EXPECT_EQ(split_all({"<think>why</think>\n\nanswer"}), std::make_pair(std::string("why"), std::string("answer")));
  EXPECT_EQ(split_all({"<th", "ink>a", "b</th", "ink>", "\n", "\nc"}), std::make_pair(std::string("ab"), std::string("c")));
  EXPECT_EQ(split_all({"plain answer"}), std::make_pair(std::string(), std::string("plain answer")));
  EXPECT_EQ(split_all({"<thin", "g>"}), std::make_pair(std::string(), std::string("<thing>")));
  EXPECT_EQ(split_all({"still thinking"}, true), std::make_pair(std::string("still thinking"), std::string()));
  EXPECT_EQ(split_all({"r</think>c"}, true), std::make_pair(std::string("r"), std::string("c")));
}

TEST(Metrics, PrometheusTextHasTypesAndCumulativeBuckets) {
  engine::EngineMetrics m;
  m.kv_blocks_total = 10;
  m.kv_blocks_used = 3;
  m.ttft.observe(0.02);
  m.ttft.observe(0.2);
  m.ttft.observe(100);
  HttpCounters h;
  h.requests[{"/v1/completions", 400}] = 2;
  std::string t = render_metrics(m, h, "my\"model");
  EXPECT_NE(t.find("# TYPE dsinfer_kv_blocks_used gauge"), std::string::npos);
  EXPECT_NE(t.find("dsinfer_kv_blocks_used{model=\"my\\\"model\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("dsinfer_http_requests_total{model=\"my\\\"model\",endpoint=\"/v1/completions\",status=\"400\"} 2"),
            std::string::npos);
  EXPECT_NE(t.find("dsinfer_time_to_first_token_seconds_bucket{model=\"my\\\"model\",le=\"0.025\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("dsinfer_time_to_first_token_seconds_bucket{model=\"my\\\"model\",le=\"0.25\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("dsinfer_time_to_first_token_seconds_bucket{model=\"my\\\"model\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("dsinfer_time_to_first_token_seconds_count{model=\"my\\\"model\"} 3\n"), std::string::npos);
  // The kernel path in use (kernels/cpu_features.h), as a labelled gauge.
  EXPECT_NE(t.find(std::string("dsinfer_kernel_path{model=\"my\\\"model\",isa=\"") +
                   kernels::isa_name(kernels::active_isa()) + "\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace dsinfer::serve
