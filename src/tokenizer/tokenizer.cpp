#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "base/json_fields.h"
#include "base/read_file.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

struct Tokenizer::Impl {
  std::unique_ptr<BpeModel> model;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  Decoder decoder;
  AddedTokenMatcher raw_matcher;         // added tokens with normalized=false
  AddedTokenMatcher normalized_matcher;  // added tokens with normalized=true
  std::unordered_map<std::string, int32_t> added_by_content;
  std::vector<std::string> added_content;  // by id; empty when the id is not an added token
  std::vector<uint8_t> special;            // by id: an added token flagged special
  std::vector<uint8_t> skip;               // by id: left out by decode(skip_special_tokens)
  std::unordered_set<std::string> special_contents;
  std::vector<std::string> bytes;          // by id: what the ByteLevel decoder makes of it
  size_t vocab_size = 0;
  std::string bos_token, eos_token, chat_template;
  std::string chat_template_problem;  // "" when render_chat works
  int32_t bos_id = -1, eos_id = -1;
  bool add_bos_token = false;  // tokenizer_config.json; absent: no BOS on text prompts
};

namespace {

// Anything at the path counts: a directory or FIFO named tokenizer.json is then refused by
// read_regular_file with its name, instead of being skipped as absent.
bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// Hugging Face's files carry many fields dsinfer does not use: unknown ones are ignored.
constexpr FieldStyle kLenient{UnknownKeys::kIgnore, "field"};

// bos_token / eos_token in tokenizer_config.json: a string, an AddedToken object, or null.
std::string token_content(const nlohmann::json& cfg, const char* key, const std::string& origin) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  fail(origin, ": ", key, " must be a string or an object with \"content\"");
}

struct BpeSink final : PieceSink {
  const BpeModel* model;
  std::vector<int32_t>* out;
  void piece(std::string_view word) override { model->encode_word(word, *out); }
};

}  // namespace

Tokenizer Tokenizer::from_dir(const std::string& model_dir) {
  std::string path = model_dir + "/tokenizer.json";
  if (!file_exists(path))
    fail("no tokenizer.json in ", model_dir,
         " (a model directory needs the tokenizer.json and tokenizer_config.json of its model)");
  std::string json = read_regular_file(path, "tokenizer file");
  std::string config_path = model_dir + "/tokenizer_config.json";
  std::string config = file_exists(config_path) ? read_regular_file(config_path, "tokenizer config") : "";
  return from_json(json, config, path);
}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                               const std::string& origin) {
  nlohmann::json j = parse_json(tokenizer_json, origin);
  if (!j.is_object()) fail(origin, " must hold a JSON object");
  auto impl = std::make_shared<Impl>();
  try {
    auto model_it = j.find("model");
    if (model_it == j.end() || !model_it->is_object()) fail("tokenizer.json has no \"model\" object");
    std::string type = model_it->value("type", "BPE");
    if (type != "BPE")
      fail("tokenizer.json: model type '", type, "' is not supported (only byte-level BPE models are)");
    if (j.contains("normalizer")) impl->normalizer = Normalizer(j["normalizer"]);
    if (j.contains("pre_tokenizer")) impl->pre_tokenizer = PreTokenizer(j["pre_tokenizer"]);
    if (j.contains("decoder")) impl->decoder = Decoder(j["decoder"]);
    impl->model = std::make_unique<BpeModel>(*model_it, impl->pre_tokenizer.byte_level());
    // The post-processor only adds special tokens around a sequence; encode() adds none, so it is
    // not consulted.

    std::vector<AddedToken> added;
    if (auto it = j.find("added_tokens"); it != j.end() && !it->is_null()) {
      if (!it->is_array()) fail("tokenizer.json: added_tokens must be an array");
      for (size_t i = 0; i < it->size(); ++i) {
        const nlohmann::json& t = (*it)[i];
        if (!t.is_object()) fail("tokenizer.json: every added token must be an object with a string \"content\"");
        FieldReader r(t, "tokenizer.json", str("added_tokens[", i, "]"), kLenient);
        AddedToken a;
        a.content = r.string("content");
        a.single_word = r.boolean_or("single_word", false);
        a.lstrip = r.boolean_or("lstrip", false);
        a.rstrip = r.boolean_or("rstrip", false);
        a.normalized = r.boolean_or("normalized", true);
        a.special = r.boolean_or("special", false);
        added.push_back(a);
      }
    }
    // Ids are assigned the way Hugging Face assigns them while loading (the "id" fields are only
    // checked there, with a warning): a content already known (model vocabulary or an earlier
    // added token) keeps that id, anything new takes the next id after the vocabulary.
    const int32_t model_size = int32_t(impl->model->size());
    int32_t max_added = -1;
    std::vector<std::pair<AddedToken, int32_t>> assigned;
    for (AddedToken& a : added) {
      if (a.content.empty()) continue;
      int32_t id = -1;
      if (auto f = impl->added_by_content.find(a.content); f != impl->added_by_content.end()) id = f->second;
      else id = impl->model->token_to_id(a.content);
      if (id < 0) {
        id = max_added < 0 ? model_size : (max_added >= model_size || model_size == 0 ? max_added + 1 : model_size);
        impl->added_by_content.emplace(a.content, id);
      } else {
        impl->added_by_content.emplace(a.content, id);
      }
      max_added = std::max(max_added, id);
      a.id = id;
      assigned.emplace_back(a, id);
    }
    impl->vocab_size = std::max<size_t>(size_t(model_size), size_t(max_added + 1));
    impl->added_content.assign(impl->vocab_size, "");
    impl->special.assign(impl->vocab_size, 0);
    for (auto& [a, id] : assigned) {
      // A normalized token is known by its normalized form once added: that is what decoding
      // shows for its id.
      std::string pattern = a.content;
      if (a.normalized && impl->normalizer.active() && is_valid_utf8(pattern)) impl->normalizer.normalize(pattern);
      impl->added_content[id] = pattern;
      impl->special[id] = a.special;
      if (a.special) impl->special_contents.insert(a.content);
      if (!a.normalized) impl->raw_matcher.add(a.content, a);
      else impl->normalized_matcher.add(pattern, a);
    }
    // Decoding with skip_special_tokens drops a token when its text is a special token's
    // content, which is how Hugging Face decides it.
    impl->skip.assign(impl->vocab_size, 0);
    for (size_t id = 0; id < impl->vocab_size; ++id) {
      const std::string& t = impl->added_content[id].empty() ? impl->model->id_to_token(int32_t(id))
                                                             : impl->added_content[id];
      impl->skip[id] = !t.empty() && impl->special_contents.count(t) > 0;
    }
    if (impl->decoder.is_byte_level()) {
      impl->bytes.resize(impl->vocab_size);
      for (size_t id = 0; id < impl->vocab_size; ++id) {
        const std::string& t = impl->added_content[id].empty() ? impl->model->id_to_token(int32_t(id))
                                                              : impl->added_content[id];
        auto b = byte_level_to_bytes(t);
        impl->bytes[id] = b ? *b : t;
      }
    }
  } catch (const Error& e) {
    std::string msg = e.what();
    // Messages from the parts start with "tokenizer.json"; name the real file instead.
    if (msg.rfind("tokenizer.json", 0) == 0) msg = origin + msg.substr(14);
    throw Error(msg);
  } catch (const nlohmann::json::exception& e) {
    fail(origin, ": unexpected structure: ", e.what());
  }

  if (!config_json.empty()) {
    std::string cfg_origin = origin.size() >= 14 && origin.compare(origin.size() - 14, 14, "tokenizer.json") == 0
                                 ? origin.substr(0, origin.size() - 14) + "tokenizer_config.json"
                                 : "tokenizer_config.json";
    nlohmann::json cfg = parse_json(config_json, cfg_origin);
    if (!cfg.is_object()) fail(cfg_origin, " must hold a JSON object");
    impl->bos_token = token_content(cfg, "bos_token", cfg_origin);
    impl->eos_token = token_content(cfg, "eos_token", cfg_origin);
    impl->add_bos_token = FieldReader(cfg, cfg_origin, "", kLenient).boolean_or("add_bos_token", false);
    if (auto it = cfg.find("chat_template"); it != cfg.end() && !it->is_null()) {
      if (it->is_string()) {
        impl->chat_template = it->get<std::string>();
      } else if (it->is_array()) {
        // Several named templates: the one called "default" is the chat template.
        for (const auto& t : *it)
          if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string())
            impl->chat_template = t["template"].get<std::string>();
      } else {
        fail(cfg_origin, ": chat_template must be a string or a list of {name, template}");
      }
    }
  }
  Tokenizer tok;
  tok.impl_ = impl;
  impl->bos_id = impl->bos_token.empty() ? -1 : tok.token_id(impl->bos_token);
  impl->eos_id = impl->eos_token.empty() ? -1 : tok.token_id(impl->eos_token);
  impl->chat_template_problem = tok.probe_chat_template();
  return tok;
}

bool Tokenizer::adds_bos() const { return impl_->add_bos_token && impl_->bos_id >= 0; }

std::vector<int32_t> Tokenizer::encode_prompt(std::string_view text) const {
  std::vector<int32_t> ids;
  if (adds_bos()) ids.push_back(impl_->bos_id);
  encode(text, ids);
  return ids;
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  const Impl& im = *impl_;
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = utf8_lossy(text);
    text = repaired;
  }
  BpeSink sink;
  sink.model = im.model.get();
  sink.out = &out;
  std::vector<Segment> raw, norm;
  im.raw_matcher.split(text, raw);
  std::string normalized;
  for (const Segment& seg : raw) {
    if (seg.id >= 0) {
      out.push_back(seg.id);
      continue;
    }
    std::string_view piece = text.substr(seg.begin, seg.end - seg.begin);
    if (im.normalizer.active()) {
      normalized.assign(piece);
      im.normalizer.normalize(normalized);
      piece = normalized;
    }
    norm.clear();
    im.normalized_matcher.split(piece, norm);
    for (const Segment& s : norm) {
      if (s.id >= 0) out.push_back(s.id);
      else im.pre_tokenizer.run(piece.substr(s.begin, s.end - s.begin), sink);
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  encode(text, out);
  return out;
}

bool Tokenizer::is_valid_id(int32_t id) const {
  if (id < 0 || size_t(id) >= impl_->vocab_size) return false;
  return !impl_->added_content[id].empty() || !impl_->model->id_to_token(id).empty();
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  for (int32_t id : ids)
    if (!is_valid_id(id))
      fail("token id ", id, " is out of range (the vocabulary has ids 0..", im.vocab_size - 1, ")");
  if (im.decoder.is_byte_level()) {
    std::string bytes;
    for (int32_t id : ids)
      if (!skip_special_tokens || !im.skip[id]) bytes += im.bytes[id];
    return utf8_lossy(bytes);
  }
  std::vector<std::string> tokens;
  for (int32_t id : ids)
    if (!skip_special_tokens || !im.skip[id]) tokens.push_back(id_to_token(id));
  return im.decoder.decode(std::move(tokens));
}

int32_t Tokenizer::bos_id() const { return impl_->bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->eos_id; }

int32_t Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->added_by_content.find(std::string(token));
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

const std::string& Tokenizer::id_to_token(int32_t id) const {
  if (!is_valid_id(id)) fail("token id ", id, " is out of range (the vocabulary has ids 0..", impl_->vocab_size - 1, ")");
  const std::string& added = impl_->added_content[id];
  return added.empty() ? impl_->model->id_to_token(id) : added;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->vocab_size && impl_->special[id];
}

bool Tokenizer::skipped_as_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->vocab_size && impl_->skip[id];
}

bool Tokenizer::byte_level_decoding() const { return impl_->decoder.is_byte_level(); }

const std::string& Tokenizer::token_bytes(int32_t id) const {
  if (!is_valid_id(id)) fail("token id ", id, " is out of range (the vocabulary has ids 0..", impl_->vocab_size - 1, ")");
  return impl_->bytes[id];
}

const std::string& Tokenizer::bos_token() const { return impl_->bos_token; }
const std::string& Tokenizer::eos_token() const { return impl_->eos_token; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }

std::string Tokenizer::probe_chat_template() const {
  // Every role and a tool call: what a client may send, rendered and encoded as a request would be.
  std::vector<ChatMessage> probe(5);
  probe[0].role = "system";
  probe[0].content = "You are a helpful assistant.";
  probe[1].role = "user";
  probe[1].content = "What is the weather?";
  probe[2].role = "assistant";
  probe[2].tool_calls.push_back({"call_0", "function", "get_weather", R"({"city": "Paris"})"});
  probe[3].role = "tool";
  probe[3].content = "sunny";
  probe[3].tool_call_id = "call_0";
  probe[4].role = "user";
  probe[4].content = "Thanks.";
  try {
    std::string text = render_chat(probe, true);
    if (text.empty() || encode(text).empty()) return "the chat template renders a conversation as empty text";
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::string& Tokenizer::chat_template_problem() const { return impl_->chat_template_problem; }

std::string Tokenizer::render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  if (impl_->chat_template.empty())
    fail("this model's tokenizer_config.json has no chat_template, so conversations cannot be rendered");
  if (!is_deepseek_v3_template(impl_->chat_template))
    fail("this model's chat template is not the DeepSeek-V3 one, the only template dsinfer renders");
  return dsinfer::tokenizer::render_chat(messages, add_generation_prompt, impl_->bos_token);
}

}  // namespace dsinfer::tokenizer
