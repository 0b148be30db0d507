#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsinfer::tokenizer {

namespace {

// DeepSeek-V3's tokenizer_config.json chat_template, verbatim.
constexpr std::string_view kDeepSeekV3Template = R"jinja({% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '

' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '
' + '```json' + '
' + tool['function']['arguments'] + '
' + '```' + '<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- else %}{{'
' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '
' + '```json' + '
' + tool['function']['arguments'] + '
' + '```' + '<｜tool▁call▁end｜>'}}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'
<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %})jinja";

}  // namespace

bool is_deepseek_v3_template(std::string_view jinja) { return jinja == kDeepSeekV3Template; }

std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const std::string& bos_token) {
  // Names follow the template's namespace variables so the two can be read side by side.
  bool is_first = false, is_tool = false, is_output_first = true, is_first_sp = true;
  std::string system_prompt;
  for (const ChatMessage& m : messages) {
    if (m.role != "system") continue;
    if (!is_first_sp) system_prompt += "\n\n";
    system_prompt += m.content;
    is_first_sp = false;
  }
  std::string out = bos_token + system_prompt;
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      is_tool = false;
      out += "<｜User｜>" + m.content;
    } else if (m.role == "assistant") {
      bool content_is_none = m.content.empty() && !m.tool_calls.empty();
      if (content_is_none) {
        is_tool = false;
        for (const ToolCall& t : m.tool_calls) {
          std::string call = "<｜tool▁call▁begin｜>" + t.type + "<｜tool▁sep｜>" + t.name + "\n```json\n" +
                             t.arguments + "\n```<｜tool▁call▁end｜>";
          if (!is_first) {
            out += "<｜Assistant｜><｜tool▁calls▁begin｜>" + call;
            is_first = true;
          } else {
            out += "\n" + call + "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>";
          }
        }
      } else if (is_tool) {
        out += "<｜tool▁outputs▁end｜>" + m.content + "<｜end▁of▁sentence｜>";
        is_tool = false;
      } else {
        out += "<｜Assistant｜>" + m.content + "<｜end▁of▁sentence｜>";
      }
    } else if (m.role == "tool") {
      is_tool = true;
      if (is_output_first) {
        out += "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + m.content + "<｜tool▁output▁end｜>";
        is_output_first = false;
      } else {
        out += "\n<｜tool▁output▁begin｜>" + m.content + "<｜tool▁output▁end｜>";
      }
    }
  }
  if (is_tool) out += "<｜tool▁outputs▁end｜>";
  if (add_generation_prompt && !is_tool) out += "<｜Assistant｜>";
  return out;
}

namespace {

std::string text_field(const nlohmann::json& obj, const char* key, const std::string& where, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) fail(where, " has no \"", key, "\"");
    return "";
  }
  if (!it->is_string()) fail(where, ": \"", key, "\" must be a string, got ", it->type_name());
  return it->get<std::string>();
}

// "content": a string, null, or OpenAI's array of parts. Text parts ({"type": "text", "text"})
// are concatenated in order, with nothing between them: the client split the text, joining it
// back restores it. Other part types (image_url, input_audio, file) name a modality this model
// does not have, so they are refused rather than silently dropped.
std::string content_field(const nlohmann::json& obj, const std::string& where) {
  auto it = obj.find("content");
  if (it == obj.end() || it->is_null() || it->is_string()) return text_field(obj, "content", where, false);
  if (!it->is_array())
    fail(where, ": \"content\" must be a string or an array of content parts, got ", it->type_name());
  std::string text;
  for (size_t k = 0; k < it->size(); ++k) {
    const nlohmann::json& part = (*it)[k];
    std::string pwhere = str(where, " content part ", k);
    if (!part.is_object()) fail(pwhere, " must be a JSON object");
    std::string type = text_field(part, "type", pwhere, true);
    if (type != "text") fail(pwhere, " has type '", type, "'; only \"text\" parts are supported");
    text += text_field(part, "text", pwhere, true);
  }
  return text;
}

}  // namespace

std::vector<ChatMessage> chat_messages_from_json(const nlohmann::json& messages) {
  if (!messages.is_array()) fail("messages must be a JSON array, got ", messages.type_name());
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::json& m = messages[i];
    std::string where = str("message ", i);
    if (!m.is_object()) fail(where, " must be a JSON object");
    ChatMessage msg;
    msg.role = text_field(m, "role", where, true);
    // OpenAI's "developer" role is its newer name for "system".
    if (msg.role == "developer") msg.role = "system";
    // The template would drop any other role without a trace: the model would never see it.
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool")
      fail(where, " has role '", msg.role, "'; expected system, developer, user, assistant or tool");
    msg.content = content_field(m, where);
    msg.reasoning_content = text_field(m, "reasoning_content", where, false);
    msg.tool_call_id = text_field(m, "tool_call_id", where, false);
    if (auto it = m.find("tool_calls"); it != m.end() && !it->is_null()) {
      if (!it->is_array()) fail(where, ": \"tool_calls\" must be an array");
      for (size_t k = 0; k < it->size(); ++k) {
        const nlohmann::json& t = (*it)[k];
        std::string twhere = str(where, " tool call ", k);
        if (!t.is_object()) fail(twhere, " must be a JSON object");
        auto fn = t.find("function");
        if (fn == t.end() || !fn->is_object()) fail(twhere, " has no \"function\" object");
        ToolCall call;
        call.id = text_field(t, "id", twhere, false);
        if (t.contains("type")) call.type = text_field(t, "type", twhere, true);
        call.name = text_field(*fn, "name", twhere + " function", true);
        auto args = fn->find("arguments");
        // Clients send arguments as a JSON text; an object is accepted and serialized.
        if (args != fn->end() && args->is_object()) call.arguments = args->dump();
        else call.arguments = text_field(*fn, "arguments", twhere + " function", true);
        msg.tool_calls.push_back(std::move(call));
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace dsinfer::tokenizer
