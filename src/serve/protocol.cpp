#include "serve/protocol.h"

#include <algorithm>

#include "base/json.h"
#include "base/json_fields.h"
#include "serve/api_error.h"
#include "tokenizer/chat_template.h"

namespace dsinfer::serve {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& param, const std::string& message, const std::string& code = {}) {
  throw ApiError(400, message, "invalid_request_error", param, code);
}

// Request bodies are read leniently: unknown fields are ignored, as OpenAI's API does.
constexpr FieldStyle kBodyStyle{UnknownKeys::kIgnore, "field"};

// Token ids as int32: whether each is in the vocabulary is the validation's to say, once.
std::vector<int32_t> token_array(const FieldReader& body, const json& v, const std::string& name) {
  std::vector<int32_t> ids;
  for (const auto& x : v) {
    if (!x.is_number_integer()) body.fail(name, "must be an array of token ids");
    // Unsigned first: get<int64_t>() of an id above INT64_MAX would wrap to a negative one.
    if (x.is_number_unsigned() ? x.get<uint64_t>() > uint64_t(INT32_MAX)
                               : x.get<int64_t>() < INT32_MIN || x.get<int64_t>() > INT32_MAX)
      body.fail(name, "holds token id ", shown_json(x), ", outside the vocabulary");
    ids.push_back(int32_t(x.get<int64_t>()));
  }
  return ids;
}

void parse_sampling(FieldReader& body, Endpoint ep, ParsedRequest& r, engine::SamplingParams& p) {
  p.temperature = body.number_or("temperature", 1.0);
  p.top_p = body.number_or("top_p", 1.0);
  p.top_k = body.integer_or("top_k", 0);
  if (p.top_k == -1) p.top_k = 0;  // vLLM's spelling of "off"
  p.min_p = body.number_or("min_p", 0.0);
  p.frequency_penalty = body.number_or("frequency_penalty", 0.0);
  p.presence_penalty = body.number_or("presence_penalty", 0.0);
  p.repetition_penalty = body.number_or("repetition_penalty", 1.0);
  p.n = body.integer_or("n", 1);
  p.ignore_eos = body.boolean_or("ignore_eos", false);
  if (const json* s = body.optional_value("seed")) {
    // Any 64-bit integer, negative ones as their two's complement bits.
    if (!s->is_number_integer()) body.fail("seed", "must be an integer, got ", shown_json(*s));
    p.seed = s->is_number_unsigned() ? s->get<uint64_t>() : uint64_t(s->get<int64_t>());
  }
  // Their count and length are limits: validate_request checks them (the body is bounded already).
  if (const json* s = body.optional_value("stop")) {
    if (s->is_string()) {
      p.stop = {s->get<std::string>()};
    } else if (s->is_array()) {
      p.stop = body.strings("stop");
    } else {
      body.fail("stop", "must be a string or an array of strings");
    }
  }
  if (const json* s = body.optional_array("stop_token_ids")) p.stop_token_ids = token_array(body, *s, "stop_token_ids");
  if (ep == Endpoint::kChat) {
    r.want_logprobs = body.boolean_or("logprobs", false);
    int64_t top = body.integer_or("top_logprobs", -1);
    if (top >= 0 && !r.want_logprobs) body.fail("top_logprobs", "needs 'logprobs': true");
    p.logprobs = r.want_logprobs ? std::max<int64_t>(0, top) : -1;
    if (top < -1) p.logprobs = top;  // the validation names the range
  } else {
    int64_t lp = body.integer_or("logprobs", -1);
    r.want_logprobs = lp >= 0;
    p.logprobs = lp;
    if (lp > 5) body.fail("logprobs", "must be in [0, 5] for completions, got ", lp);
  }
  if (std::optional<FieldReader> so = body.optional_reader("stream_options"))
    r.include_usage = so->boolean_or("include_usage", false);
  r.return_token_ids = body.boolean_or("return_token_ids", false);
}

ParsedRequest parse_fields(Endpoint endpoint, const json& json_body, const ProtocolContext& ctx) {
  FieldReader body(json_body, "", "", kBodyStyle);
  ParsedRequest r;
  r.endpoint = endpoint;
  r.model = body.string("model");
  if (std::find(ctx.model_names.begin(), ctx.model_names.end(), r.model) == ctx.model_names.end())
    throw ApiError(400, str("the model '", r.model, "' does not exist; this server serves '", ctx.model_names[0], "'"),
                   "invalid_request_error", "model", "model_not_found");
  r.stream = body.boolean_or("stream", false);
  engine::SamplingParams params;
  std::vector<int32_t> prompt;
  parse_sampling(body, endpoint, r, params);
  if (!r.stream && body.has("stream_options")) body.fail("stream_options", "is only allowed with 'stream': true");

  if (endpoint == Endpoint::kChat) {
    // A model whose chat template cannot be rendered cannot serve chat at all: that is the
    // server's shortcoming, not the client's (the tokenizer checked the template at load).
    if (const std::string& problem = ctx.tokenizer->chat_template_problem(); !problem.empty())
      throw ApiError(501,
                     str("this model has no usable chat template (", problem,
                         "), so /v1/chat/completions is unavailable; use /v1/completions with a prompt rendered "
                         "by the client"),
                     "server_error", "", "chat_template_unavailable");
    const json& msgs = body.array("messages", 1);
    std::vector<tokenizer::ChatMessage> messages;
    try {
      messages = tokenizer::chat_messages_from_json(msgs);
    } catch (const Error& e) {
      bad("messages", e.what());
    }
    std::string rendered = ctx.tokenizer->render_chat(messages, true);
    r.prompt_opens_reasoning = rendered.ends_with("<think>\n") || rendered.ends_with("<think>");
    prompt = ctx.tokenizer->encode(rendered);
  } else {
    const json* text = &body.value("prompt");
    if (text->is_array() && text->size() == 1 && (*text)[0].is_string()) text = &(*text)[0];
    if (text->is_array() && text->size() == 1 && (*text)[0].is_array()) text = &(*text)[0];
    if (text->is_string()) {
      // An empty text is nothing to complete, whatever BOS the tokenizer would add.
      if (text->get_ref<const std::string&>().empty()) bad("prompt", "the prompt is empty");
      prompt = ctx.tokenizer->encode_prompt(text->get<std::string>());
    } else if (text->is_array() && !text->empty() && (*text)[0].is_number_integer()) {
      prompt = token_array(body, *text, "prompt");
    } else {
      body.fail("prompt", "must be a string, an array of token ids, or an array holding one of those");
    }
    if (body.boolean_or("echo", false)) body.fail("echo", "is not supported");
    if (const json* s = body.optional_value("suffix"); s && !(s->is_string() && s->get<std::string>().empty()))
      body.fail("suffix", "is not supported");
  }
  // max_tokens: chat defaults to the rest of the context, completions to 16 (OpenAI's defaults).
  const engine::RequestLimits& lim = ctx.limits;
  const int64_t room = std::min(lim.max_model_len, lim.kv_capacity_tokens) - int64_t(prompt.size());
  const char* max_name = body.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  params.max_tokens = body.integer_or(max_name, endpoint == Endpoint::kChat ? std::max<int64_t>(1, room) : 16);
  // Every limit, once: the engine's own validation, its field named as this endpoint names it.
  try {
    r.request = engine::validate_request(lim, std::move(prompt), std::move(params));
  } catch (const engine::InvalidRequest& e) {
    std::string param = e.field;
    if (param == "prompt" && endpoint == Endpoint::kChat) param = "messages";
    if (param == "max_tokens") param = max_name;
    if (param == "top_logprobs" && endpoint == Endpoint::kCompletion) param = "logprobs";
    bad(param, e.what(), e.code);
  }
  return r;
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
  try {
    return parse_fields(endpoint, body, ctx);
  } catch (const FieldError& e) {
    // Every field problem is the client's: 400 with the field as OpenAI's `param`.
    bad(e.path(), e.what());
  }
}

json usage_json(const engine::Usage& u) {
  json j = {{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.prompt_tokens + u.completion_tokens},
            {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}},
            {"prompt_cache_hit_tokens", u.cached_tokens},
            {"prompt_cache_miss_tokens", u.prompt_tokens - u.cached_tokens}};
  // dsinfer's own: how much of the hit the disk tier loaded (absent when none did).
  if (u.disk_cached_tokens > 0) j["prompt_cache_hit_disk_tokens"] = u.disk_cached_tokens;
  return j;
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
