#include "serve/protocol.h"

#include <algorithm>

#include "base/json.h"
#include "serve/api_error.h"
#include "tokenizer/chat_template.h"

namespace dsinfer::serve {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& param, const std::string& message, const std::string& code = {}) {
  throw ApiError(400, message, "invalid_request_error", param, code);
}

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double get_number(const json& body, const char* name, double fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) bad(name, str("'", name, "' must be a number"));
  return v->get<double>();
}

int64_t get_int(const json& body, const char* name, int64_t fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (v->is_number_float()) {
    // Range first: converting a double outside int64_t (1e300) to an integer is undefined.
    double d = v->get<double>();
    if (!(d > -0x1p63 && d < 0x1p63)) bad(name, str("'", name, "' is out of range"));
    if (d != double(int64_t(d))) bad(name, str("'", name, "' must be an integer"));
    return int64_t(d);
  }
  if (!v->is_number_integer()) bad(name, str("'", name, "' must be an integer"));
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) bad(name, str("'", name, "' is too large"));
  return v->get<int64_t>();
}

bool get_bool(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(name, str("'", name, "' must be a boolean"));
  return v->get<bool>();
}

std::vector<int32_t> token_array(const json& v, const char* name, int64_t vocab) {
  std::vector<int32_t> ids;
  for (const auto& x : v) {
    if (!x.is_number_integer()) bad(name, str("'", name, "' must be an array of token ids"));
    int64_t id = x.get<int64_t>();
    if (id < 0 || id >= vocab) bad(name, str("token id ", id, " in '", name, "' is outside the vocabulary [0, ", vocab, ")"));
    ids.push_back(int32_t(id));
  }
  return ids;
}

void parse_sampling(const json& body, Endpoint ep, ParsedRequest& r, int64_t vocab) {
  auto& p = r.params;
  p.temperature = get_number(body, "temperature", 1.0);
  p.top_p = get_number(body, "top_p", 1.0);
  p.top_k = get_int(body, "top_k", 0);
  if (p.top_k == -1) p.top_k = 0;  // vLLM's spelling of "off"
  p.min_p = get_number(body, "min_p", 0.0);
  p.frequency_penalty = get_number(body, "frequency_penalty", 0.0);
  p.presence_penalty = get_number(body, "presence_penalty", 0.0);
  p.repetition_penalty = get_number(body, "repetition_penalty", 1.0);
  p.n = get_int(body, "n", 1);
  p.ignore_eos = get_bool(body, "ignore_eos", false);
  if (const json* s = field(body, "seed")) {
    // Any 64-bit integer, negative ones as their two's complement bits.
    if (!s->is_number_integer()) bad("seed", "'seed' must be an integer");
    p.seed = s->is_number_unsigned() ? s->get<uint64_t>() : uint64_t(s->get<int64_t>());
  }
  if (const json* s = field(body, "stop")) {
    if (s->is_array() && s->size() > engine::kMaxStopStrings)
      bad("stop", str("'stop' holds ", s->size(), " strings; at most ", engine::kMaxStopStrings, " are allowed"));
    if (s->is_string()) {
      p.stop = {s->get<std::string>()};
    } else if (s->is_array()) {
      for (const auto& x : *s) {
        if (!x.is_string()) bad("stop", "'stop' must be a string or an array of strings");
        p.stop.push_back(x.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of strings");
    }
    for (const auto& x : p.stop)
      if (x.size() > engine::kMaxStopBytes)
        bad("stop", str("a stop string is ", x.size(), " bytes; at most ", engine::kMaxStopBytes, " bytes are allowed"));
  }
  if (const json* s = field(body, "stop_token_ids")) {
    if (!s->is_array()) bad("stop_token_ids", "'stop_token_ids' must be an array of token ids");
    p.stop_token_ids = token_array(*s, "stop_token_ids", vocab);
  }
  if (ep == Endpoint::kChat) {
    r.want_logprobs = get_bool(body, "logprobs", false);
    int64_t top = get_int(body, "top_logprobs", -1);
    if (top >= 0 && !r.want_logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    p.logprobs = r.want_logprobs ? std::max<int64_t>(0, top) : -1;
    if (top < -1) p.logprobs = top;  // let validate() name the range
  } else {
    int64_t lp = get_int(body, "logprobs", -1);
    r.want_logprobs = lp >= 0;
    p.logprobs = lp;
    if (lp > 5) bad("logprobs", "'logprobs' must be in [0, 5] for completions");
  }
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "'stream_options' must be an object");
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  try {
    p.validate();
  } catch (const Error& e) {
    std::string msg = e.what();
    bad(msg.substr(0, msg.find(' ')), msg);
  }
}

}  // namespace

ParsedRequest parse_request(Endpoint endpoint, const std::string& text, const ProtocolContext& ctx) {
  json body;
  try {
    body = parse_json(text, "the request body");
  } catch (const Error& e) {
    bad("", e.what());
  }
  if (!body.is_object()) bad("", "the request body must be a JSON object");
  ParsedRequest r;
  r.endpoint = endpoint;
  const json* model = field(body, "model");
  if (!model) bad("model", "'model' is required");
  if (!model->is_string()) bad("model", "'model' must be a string");
  r.model = model->get<std::string>();
  if (std::find(ctx.model_names.begin(), ctx.model_names.end(), r.model) == ctx.model_names.end())
    throw ApiError(400, str("the model '", r.model, "' does not exist; this server serves '", ctx.model_names[0], "'"),
                   "invalid_request_error", "model", "model_not_found");
  r.stream = get_bool(body, "stream", false);
  const int64_t vocab = int64_t(ctx.tokenizer->vocab_size());
  parse_sampling(body, endpoint, r, vocab);
  if (!r.stream && field(body, "stream_options")) bad("stream_options", "'stream_options' is only allowed with 'stream': true");

  if (endpoint == Endpoint::kChat) {
    // A model whose chat template cannot be rendered cannot serve chat at all: that is the
    // server's shortcoming, not the client's (the tokenizer checked the template at load).
    if (const std::string& problem = ctx.tokenizer->chat_template_problem(); !problem.empty())
      throw ApiError(501,
                     str("this model has no usable chat template (", problem,
                         "), so /v1/chat/completions is unavailable; use /v1/completions with a prompt rendered "
                         "by the client"),
                     "server_error", "", "chat_template_unavailable");
    const json* msgs = field(body, "messages");
    if (!msgs) bad("messages", "'messages' is required");
    if (!msgs->is_array() || msgs->empty()) bad("messages", "'messages' must be a non-empty array");
    std::vector<tokenizer::ChatMessage> messages;
    try {
      messages = tokenizer::chat_messages_from_json(*msgs);
    } catch (const Error& e) {
      bad("messages", e.what());
    }
    std::string rendered = ctx.tokenizer->render_chat(messages, true);
    r.prompt_opens_reasoning = rendered.ends_with("<think>\n") || rendered.ends_with("<think>");
    r.prompt = ctx.tokenizer->encode(rendered);
  } else {
    const json* prompt = field(body, "prompt");
    if (!prompt) bad("prompt", "'prompt' is required");
    if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) prompt = &(*prompt)[0];
    if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_array()) prompt = &(*prompt)[0];
    if (prompt->is_string()) {
      r.prompt = ctx.tokenizer->encode(prompt->get<std::string>());
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
      r.prompt = token_array(*prompt, "prompt", vocab);
    } else {
      bad("prompt", "'prompt' must be a string, an array of token ids, or an array holding one of those");
    }
    if (get_bool(body, "echo", false)) bad("echo", "'echo' is not supported");
    if (const json* s = field(body, "suffix"); s && !(s->is_string() && s->get<std::string>().empty()))
      bad("suffix", "'suffix' is not supported");
  }
  if (r.prompt.empty()) bad(endpoint == Endpoint::kChat ? "messages" : "prompt", "the prompt is empty");
  const int64_t len = int64_t(r.prompt.size());
  if (len >= ctx.max_model_len)
    bad(endpoint == Endpoint::kChat ? "messages" : "prompt",
        str("the prompt has ", len, " tokens but the model's context is ", ctx.max_model_len, " tokens"),
        "context_length_exceeded");
  // max_tokens: chat defaults to the rest of the context, completions to 16 (OpenAI's defaults).
  const int64_t room = std::min(ctx.max_model_len, ctx.kv_capacity_tokens) - len;
  const char* max_name = field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  int64_t max_tokens = 0;
  if (!field(body, max_name)) {
    max_tokens = endpoint == Endpoint::kChat ? std::max<int64_t>(1, room) : 16;
  } else {
    max_tokens = get_int(body, max_name, 0);
    if (max_tokens <= 0) bad(max_name, str("'", max_name, "' must be at least 1, got ", max_tokens));
  }
  // Against the room left, never len + max_tokens: near 2^63 the sum overflows and passes.
  if (max_tokens > ctx.max_model_len - len)
    bad(max_name,
        str("the prompt (", len, " tokens) plus max_tokens (", max_tokens, ") exceeds the model's context of ",
            ctx.max_model_len, " tokens"),
        "context_length_exceeded");
  r.params.max_tokens = max_tokens;
  return r;
}

json usage_json(const engine::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"prompt_cache_hit_tokens", u.cached_tokens},
          {"prompt_cache_miss_tokens", u.prompt_tokens - u.cached_tokens}};
}

namespace {

std::string token_text(const tokenizer::Tokenizer& tok, int32_t id) { return tok.decode({id}); }

json token_bytes(const tokenizer::Tokenizer& tok, int32_t id) {
  json b = json::array();
  const std::string& s = tok.byte_level_decoding() ? tok.token_bytes(id) : token_text(tok, id);
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}

}  // namespace

json chat_logprobs_json(const tokenizer::Tokenizer& tok, const std::vector<engine::TokenLogprob>& lps) {
  json content = json::array();
  for (const auto& lp : lps) {
    json top = json::array();
    for (const auto& [id, l] : lp.top)
      top.push_back({{"token", token_text(tok, id)}, {"logprob", l}, {"bytes", token_bytes(tok, id)}});
    content.push_back({{"token", token_text(tok, lp.id)},
                       {"logprob", lp.logprob},
                       {"bytes", token_bytes(tok, lp.id)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json completion_logprobs_json(const tokenizer::Tokenizer& tok, const std::vector<engine::TokenLogprob>& lps,
                              int64_t& offset) {
  json tokens = json::array(), logprobs = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& lp : lps) {
    std::string t = token_text(tok, lp.id);
    tokens.push_back(t);
    logprobs.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [id, l] : lp.top) top[token_text(tok, id)] = l;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += int64_t(t.size());
  }
  return {{"tokens", tokens}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

void merge_completion_logprobs(json& a, const json& b) {
  if (a.is_null()) {
    a = b;
    return;
  }
  for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
    for (const auto& x : b[k]) a[k].push_back(x);
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace dsinfer::serve
