// The reply formatter: a token the tokenizer cannot print (a model whose vocabulary has ids the
// tokenizer lacks) is an Error from formatting, which the server's pump turns into that request's
// 500 (server.cpp); and return_token_ids puts the ids in the body.
#include "serve/completion_stream.h"

#include <gtest/gtest.h>

#include "test_helpers.h"

#include "base/error.h"

namespace dsinfer::serve {
namespace {

const tokenizer::Tokenizer& tok() { return dsinfer::testing::deepseek_v3_tokenizer(); }

ParsedRequest parsed(const std::string& body) {
  ProtocolContext c;
  c.tokenizer = &tok();
  c.model_names = {"m"};
  c.limits = {129280, 4096, 100000};
  return parse_request(Endpoint::kChat, body, c);
}

TEST(CompletionStream, ATokenTheTokenizerCannotPrintIsAnErrorNotACrash) {
  auto pr = parsed(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":2,"stream":true})");
  CompletionStream cs(pr, 1, "m");
  engine::ChoiceUpdate u;
  u.token_ids = {int32_t(tok().vocab_size()) + 5};  // padded model id: no text, no token string
  engine::TokenLogprob lp;
  lp.id = u.token_ids[0];
  lp.top = {{lp.id, -0.1f}};
  u.logprobs = {lp};
  EXPECT_THROW(cs.events({u}, tok()), Error);
}

TEST(CompletionStream, ReturnTokenIdsPutsPromptAndChoiceIdsInTheBody) {
  auto pr = parsed(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"return_token_ids":true})");
  CompletionStream cs(pr, 1, "m");
  engine::ChoiceUpdate u;
  u.token_ids = {42, 43};
  u.text = "xy";
  u.finish = engine::FinishReason::kLength;
  cs.accumulate({u}, tok());
  auto body = cs.body({});
  EXPECT_EQ(body["prompt_token_ids"].get<std::vector<int32_t>>(), pr.prompt());
  EXPECT_EQ(body["choices"][0]["token_ids"].get<std::vector<int32_t>>(), (std::vector<int32_t>{42, 43}));
}

}  // namespace
}  // namespace dsinfer::serve
