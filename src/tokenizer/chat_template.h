// The DeepSeek-V3 conversation format: what the Jinja chat template in DeepSeek-V3's
// tokenizer_config.json renders, reproduced byte for byte without a template engine (the tests
// render the real template with Jinja and compare). BOS, then every system prompt joined by a
// blank line, then <｜User｜>/<｜Assistant｜> turns ending in <｜end▁of▁sentence｜>, tool calls
// in ```json fences and tool outputs, then <｜Assistant｜> when a reply is wanted. The template's
// quirks are kept on purpose, since the model was trained on them: only the first tool call of a
// conversation opens <｜tool▁calls▁begin｜>, and every later call closes the list again.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dsinfer::tokenizer {

struct ToolCall {
  std::string id;
  std::string type = "function";
  std::string name;       // function.name
  std::string arguments;  // function.arguments: a JSON text, copied verbatim
};

struct ChatMessage {
  std::string role;  // system, user, assistant or tool (chat_messages_from_json refuses others)
  // An assistant message with tool calls and empty content stands for JSON null content, which is
  // what makes the template render its tool calls.
  std::string content;
  std::string reasoning_content;  // not part of the DeepSeek-V3 template; kept for the API
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;
};

inline constexpr const char* kDeepSeekBosToken = "<｜begin▁of▁sentence｜>";

std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        const std::string& bos_token = kDeepSeekBosToken);

// OpenAI-style messages ([{"role", "content", "tool_calls": [{"id", "type", "function": {"name",
// "arguments"}}], "tool_call_id", "reasoning_content"}]) -> ChatMessage. Null content becomes
// empty; content as an array of {"type": "text", "text"} parts is concatenated; role
// "developer" becomes "system". Throws Error naming the message and field for an unknown role,
// a non-text content part, or anything else malformed.
std::vector<ChatMessage> chat_messages_from_json(const nlohmann::json& messages);

// True when `jinja` is DeepSeek-V3's chat template, the one render_chat reproduces.
bool is_deepseek_v3_template(std::string_view jinja);

}  // namespace dsinfer::tokenizer
