#include "serve/completion_stream.h"

#include <ctime>

#include "base/error.h"
#include "base/timer.h"
#include "serve/api_error.h"

namespace dsinfer::serve {

using nlohmann::json;

namespace {

json finish_json(engine::FinishReason f) {
  if (f == engine::FinishReason::kNone) return nullptr;
  return engine::finish_reason_name(f);
}

}  // namespace

CompletionStream::CompletionStream(const ParsedRequest& pr, uint64_t request_id, std::string model_name)
    : endpoint_(pr.endpoint), model_(std::move(model_name)) {
  size_t n = size_t(pr.params().n);
  include_usage_ = pr.include_usage;
  return_token_ids_ = pr.return_token_ids;
  if (return_token_ids_) prompt_ids_ = pr.prompt();
  token_ids_.resize(return_token_ids_ ? n : 0);
  want_logprobs_ = pr.want_logprobs;
  stream_mode_ = pr.stream;
  splitters_.assign(n, ReasoningSplitter(pr.prompt_opens_reasoning));
  text_offsets_.assign(n, 0);
  content_.resize(n);
  reasoning_.resize(n);
  logprobs_.assign(n, nullptr);
  finish_.assign(n, engine::FinishReason::kNone);
  created_ = int64_t(std::time(nullptr));
  id_ = str(pr.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-", std::hex, request_id, "x",
            uint64_t(now_seconds() * 1e6));
}

json CompletionStream::chunk_head() const {
  return {{"id", id_},
          {"object", endpoint_ == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
          {"created", created_},
          {"model", model_}};
}

std::string CompletionStream::sse(json j) {
  if (include_usage_ && !j.contains("usage")) j["usage"] = nullptr;
  if (return_token_ids_ && !prompt_ids_sent_) {  // once, on the first event
    j["prompt_token_ids"] = prompt_ids_;
    prompt_ids_sent_ = true;
  }
  return "data: " + dump(j) + "\n\n";
}

json CompletionStream::apply(const engine::ChoiceUpdate& u, const tokenizer::Tokenizer& tok) {
  size_t i = size_t(u.index);
  check(i < content_.size(), "update for choice ", u.index, " of a request with ", content_.size());
  std::string r, c;
  if (endpoint_ == Endpoint::kChat) {
    splitters_[i].push(u.text, r, c);
    if (u.finish != engine::FinishReason::kNone) splitters_[i].flush(r, c);
  } else {
    c = u.text;
  }
  json lp = nullptr;
  if (want_logprobs_ && !u.logprobs.empty())
    lp = endpoint_ == Endpoint::kChat ? chat_logprobs_json(tok, u.logprobs)
                                      : completion_logprobs_json(tok, u.logprobs, text_offsets_[i]);
  if (u.finish != engine::FinishReason::kNone) finish_[i] = u.finish;
  if (!stream_mode_) {
    if (return_token_ids_) token_ids_[i].insert(token_ids_[i].end(), u.token_ids.begin(), u.token_ids.end());
    content_[i] += c;
    reasoning_[i] += r;
    if (!lp.is_null()) {
      if (endpoint_ == Endpoint::kChat) {
        if (logprobs_[i].is_null()) logprobs_[i] = {{"content", json::array()}};
        for (auto& x : lp["content"]) logprobs_[i]["content"].push_back(x);
      } else {
        merge_completion_logprobs(logprobs_[i], lp);
      }
    }
    return nullptr;
  }
  if (c.empty() && r.empty() && lp.is_null() && u.finish == engine::FinishReason::kNone &&
      (!return_token_ids_ || u.token_ids.empty()))
    return nullptr;
  json choice = {{"index", u.index}, {"logprobs", lp}, {"finish_reason", finish_json(u.finish)}};
  if (return_token_ids_) choice["token_ids"] = u.token_ids;
  if (endpoint_ == Endpoint::kChat) {
    json delta = json::object();
    if (!r.empty()) delta["reasoning_content"] = r;
    if (!c.empty()) delta["content"] = c;
    choice["delta"] = delta;
  } else {
    choice["text"] = c;
  }
  return choice;
}

std::string CompletionStream::events(const std::vector<engine::ChoiceUpdate>& ups, const tokenizer::Tokenizer& tok) {
  std::string out;
  if (!role_sent_ && endpoint_ == Endpoint::kChat) {
    for (size_t i = 0; i < content_.size(); ++i) {
      json j = chunk_head();
      j["choices"] = json::array(
          {{{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
      out += sse(j);
    }
  }
  role_sent_ = true;
  for (const auto& u : ups) {
    json choice = apply(u, tok);
    if (choice.is_null()) continue;
    json j = chunk_head();
    j["choices"] = json::array({choice});
    out += sse(j);
  }
  return out;
}

std::string CompletionStream::closing_events(const std::string& error, const engine::Usage& usage) {
  std::string out;
  if (!error.empty()) out += "data: " + error_body(500, error, "server_error") + "\n\n";
  if (include_usage_) {
    json j = chunk_head();
    j["choices"] = json::array();
    j["usage"] = usage_json(usage);
    out += sse(j);
  }
  return out + "data: [DONE]\n\n";
}

void CompletionStream::accumulate(const std::vector<engine::ChoiceUpdate>& ups, const tokenizer::Tokenizer& tok) {
  for (const auto& u : ups) apply(u, tok);
}

json CompletionStream::body(const engine::Usage& usage) const {
  json choices = json::array();
  for (size_t i = 0; i < content_.size(); ++i) {
    json c = {{"index", i}, {"logprobs", logprobs_[i]}, {"finish_reason", finish_json(finish_[i])}};
    if (endpoint_ == Endpoint::kChat) {
      json msg = {{"role", "assistant"}, {"content", content_[i]}};
      if (!reasoning_[i].empty()) msg["reasoning_content"] = reasoning_[i];
      c["message"] = msg;
    } else {
      c["text"] = content_[i];
    }
    if (return_token_ids_) c["token_ids"] = token_ids_[i];
    choices.push_back(c);
  }
  json body = {{"id", id_},
               {"object", endpoint_ == Endpoint::kChat ? "chat.completion" : "text_completion"},
               {"created", created_},
               {"model", model_},
               {"choices", choices},
               {"usage", usage_json(usage)}};
  if (return_token_ids_) body["prompt_token_ids"] = prompt_ids_;
  return body;
}

}  // namespace dsinfer::serve
