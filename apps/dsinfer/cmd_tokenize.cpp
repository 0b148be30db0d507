// `dsinfer tokenize` and `dsinfer detokenize`: the tokenizer of a model directory on the command
// line, one JSON value per line so scripts (and the exactness tests) can stream thousands of
// strings through one process.
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "command.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace dsinfer::app {

namespace {

using tokenizer::Tokenizer;

void print_ids(const std::vector<int32_t>& ids) {
  std::string line = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ',';
    line += std::to_string(ids[i]);
  }
  line += "]\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

void print_string(const std::string& s) {
  std::string line = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

nlohmann::json parse_line(const std::string& line, size_t number) {
  try {
    // Depth-limited: a conversation nested 70,000 deep would otherwise overflow the stack when
    // its tool-call arguments are dumped.
    return parse_json(line, str("stdin line ", number));
  } catch (const Error& e) {
    // The parser quotes the offending bytes, which may be the invalid UTF-8 that failed.
    fail(tokenizer::utf8_lossy(e.what()), " (strings must be UTF-8)");
  }
}

// Calls fn(json, line_number) for each line of stdin (JSON Lines), flushing output every 256
// lines so a pipe sees results as they come. A blank line is passed as nullptr, so a command can
// print one line for it and output line N stays the answer to input line N.
template <typename Fn>
void for_each_json_line(Fn fn) {
  std::string line;
  size_t number = 0;
  while (std::getline(std::cin, line)) {
    ++number;
    if (line.empty() || line == "\r") {
      fn(nullptr, number);
    } else {
      const nlohmann::json j = parse_line(line, number);
      fn(&j, number);
    }
    if (number % 256 == 0) std::fflush(stdout);
  }
}

// One conversation: {"messages": [...], "add_generation_prompt": bool} or a bare message array.
std::string render(const Tokenizer& tok, const nlohmann::json& j, size_t number) {
  try {
    bool agp = false;
    const nlohmann::json* messages = &j;
    if (j.is_object()) {
      auto it = j.find("messages");
      if (it == j.end()) fail("the object has no \"messages\"");
      messages = &*it;
      if (auto g = j.find("add_generation_prompt"); g != j.end()) {
        if (!g->is_boolean()) fail("\"add_generation_prompt\" must be true or false");
        agp = g->get<bool>();
      }
    }
    return tok.render_chat(tokenizer::chat_messages_from_json(*messages), agp);
  } catch (const Error& e) {
    fail("stdin line ", number, ": ", e.what());
  }
}

int run_tokenize(Args& args) {
  std::string model = args.require("model");
  auto text = args.get("text");
  bool chat = args.flag("chat");
  bool render_only = args.flag("render");
  bool add_bos = args.flag("add-bos");
  args.finish();
  if (render_only && !chat) fail("--render needs --chat");
  Tokenizer tok = Tokenizer::from_dir(model);
  if (add_bos && tok.bos_id() < 0) fail("--add-bos: ", model, "/tokenizer_config.json names no bos_token");
  auto emit = [&](const std::string& s) {
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(tok.bos_id());
    tok.encode(s, ids);
    print_ids(ids);
  };
  if (text) {
    if (chat) fail("--chat reads conversations from stdin; drop --text");
    emit(*text);
    return 0;
  }
  for_each_json_line([&](const nlohmann::json* line, size_t number) {
    if (!line) {  // a blank line: the empty text (no messages, no ids)
      if (chat && render_only) print_string("");
      else emit("");
      return;
    }
    const nlohmann::json& j = *line;
    if (chat) {
      std::string rendered = render(tok, j, number);
      if (render_only) print_string(rendered);
      else emit(rendered);
    } else {
      if (!j.is_string()) fail("stdin line ", number, " must be a JSON string, got ", j.type_name());
      emit(j.get_ref<const std::string&>());
    }
  });
  return 0;
}

int run_detokenize(Args& args) {
  std::string model = args.require("model");
  auto ids_flag = args.get("ids");
  bool skip_special = args.flag("skip-special");
  args.finish();
  Tokenizer tok = Tokenizer::from_dir(model);
  if (ids_flag) {
    print_string(tok.decode(parse_id_list(*ids_flag, "ids"), skip_special));
    return 0;
  }
  for_each_json_line([&](const nlohmann::json* line, size_t number) {
    if (!line) {  // a blank line: no ids, the empty text
      print_string("");
      return;
    }
    const nlohmann::json& j = *line;
    if (!j.is_array()) fail("stdin line ", number, " must be a JSON array of token ids, got ", j.type_name());
    std::vector<int32_t> ids;
    ids.reserve(j.size());
    for (const auto& v : j) {
      if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
        fail("stdin line ", number, ": ", v.dump(), " is not a token id");
      ids.push_back(v.get<int32_t>());
    }
    try {
      print_string(tok.decode(ids, skip_special));
    } catch (const Error& e) {
      fail("stdin line ", number, ": ", e.what());
    }
  });
  return 0;
}

Registration tokenize_registration({
    "tokenize",
    "text -> token ids with a model's tokenizer (JSON Lines on stdin, or --text)",
    "--model DIR [--text STRING] [--add-bos] [--chat [--render]]\n\n"
    "  --model DIR    model directory holding tokenizer.json and tokenizer_config.json\n"
    "  --text STRING  tokenize this one string instead of reading stdin\n"
    "  (stdin)        one JSON string per line; prints one JSON array of ids per line\n"
    "                 (a blank line counts as the empty string: output line N answers input line N)\n"
    "  --add-bos      put the BOS id first (by default no BOS is added; special-token\n"
    "                 strings inside the text are recognised either way)\n"
    "  --chat         each stdin line is a conversation, {\"messages\": [...],\n"
    "                 \"add_generation_prompt\": bool} or a bare message array, rendered\n"
    "                 with the model's chat template and then tokenized\n"
    "  --render       with --chat: print the rendered text as a JSON string instead of ids",
    run_tokenize,
});

Registration detokenize_registration({
    "detokenize",
    "token ids -> text with a model's tokenizer (JSON Lines on stdin, or --ids)",
    "--model DIR [--ids 1,2,3] [--skip-special]\n\n"
    "  --model DIR     model directory holding tokenizer.json\n"
    "  --ids LIST      decode this comma-separated id list instead of reading stdin\n"
    "  (stdin)         one JSON array of ids per line; prints one JSON string per line\n"
    "  --skip-special  leave special tokens (BOS, EOS, ...) out of the text",
    run_detokenize,
});

}  // namespace

}  // namespace dsinfer::app
