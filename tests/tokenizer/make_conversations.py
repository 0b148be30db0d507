#!/usr/bin/env python3
"""Writes corpus/conversations.jsonl: the conversations the chat-template test renders with both
the real Jinja template and dsinfer. Each line is {"name", "messages", "add_generation_prompt"};
messages are OpenAI-style (assistant tool calls with "content": null).

    python3 tests/tokenizer/make_conversations.py > tests/tokenizer/corpus/conversations.jsonl"""
import json
import sys


def call(name, args, cid="call_1"):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}


sys_ = lambda c: {"role": "system", "content": c}
user = lambda c: {"role": "user", "content": c}
asst = lambda c: {"role": "assistant", "content": c}
tools = lambda *calls: {"role": "assistant", "content": None, "tool_calls": list(calls)}
tool = lambda c, cid="call_1": {"role": "tool", "content": c, "tool_call_id": cid}

weather = call("get_weather", {"city": "Paris", "unit": "celsius"})
time_ = call("get_time", {"tz": "Europe/Paris"}, "call_2")
search = call("search", {"q": "DeepSeek-V3 技术报告", "top_k": 3}, "call_3")

CONVERSATIONS = [
    ("empty", [], False),
    ("empty with prompt", [], True),
    ("one user turn", [user("Hello!")], True),
    ("one user turn, no prompt", [user("Hello!")], False),
    ("system and user", [sys_("You are a helpful assistant."), user("What is 2+2?")], True),
    ("two system prompts joined", [sys_("Be brief."), sys_("Answer in French."), user("Hi")], True),
    ("system after user still goes first", [user("Hi"), sys_("Late system prompt."), asst("Hello."), user("Again")], True),
    ("only system", [sys_("Only a system prompt.")], True),
    ("multi-turn", [user("Hi"), asst("Hello! How can I help?"), user("Tell me a joke."), asst("Why did the GPU cross the road?"), user("Why?")], True),
    ("ends with assistant", [user("Hi"), asst("Hello.")], False),
    ("ends with assistant, prompt", [user("Hi"), asst("Hello.")], True),
    ("unicode and whitespace", [user("你好，世界！\n\tこんにちは 🇯🇵 👨‍👩‍👧‍👦"), asst("  spaced  \n\n")], True),
    ("special tokens inside content", [user("Say <｜end▁of▁sentence｜> and <｜User｜> literally")], True),
    ("empty contents", [sys_(""), user(""), asst("")], True),
    ("one tool call and output", [user("Weather in Paris?"), tools(weather), tool('{"temp": 18}')], True),
    ("tool output then answer", [user("Weather in Paris?"), tools(weather), tool('{"temp": 18}'), asst("It is 18°C in Paris.")], True),
    ("two calls in one message", [user("Weather and time in Paris?"), tools(weather, time_), tool('{"temp": 18}'), tool('{"time": "14:05"}', "call_2"), asst("18°C, 14:05.")], True),
    ("three calls in one message", [user("All of it"), tools(weather, time_, search), tool("a"), tool("b", "call_2"), tool("c", "call_3")], False),
    ("tool calls in two turns", [sys_("Use tools."), user("Weather?"), tools(weather), tool('{"temp": 18}'), asst("18°C."), user("And the time?"), tools(time_), tool('{"time": "14:05"}', "call_2"), asst("14:05.")], True),
    ("tool outputs across turns", [user("q1"), tools(weather), tool("r1"), asst("a1"), user("q2"), tools(search), tool("r2"), tool("r3", "call_3")], True),
    ("user after tool output", [user("Weather?"), tools(weather), tool('{"temp": 18}'), user("Thanks, and tomorrow?")], True),
    ("assistant with content and tool calls renders content", [user("Hi"), {"role": "assistant", "content": "Let me check.", "tool_calls": [weather]}, tool("r")], True),
    ("arguments with newlines and unicode", [user("Write"), tools(call("write_file", {"path": "a.txt", "text": "line1\nline2 ✓"}))], False),
    ("long system prompt", [sys_("Rules:\n" + "\n".join(f"{i}. Rule number {i}." for i in range(1, 30))), user("Go")], True),
]


def main():
    for name, messages, agp in CONVERSATIONS:
        sys.stdout.write(json.dumps({"name": name, "messages": messages, "add_generation_prompt": agp}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
