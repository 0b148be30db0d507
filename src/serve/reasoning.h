// DeepSeek API's reasoning_content: text a reasoning model writes between <think> and </think>
// at the start of its reply is reasoning, the rest is the answer (content). Works on streamed
// text: a tag split across pieces is held back until it is complete or ruled out.
#pragma once

#include <string>
#include <string_view>

namespace dsinfer::serve {

class ReasoningSplitter {
 public:
  // in_reasoning: the prompt already opened <think> (R1-style templates end with it).
  explicit ReasoningSplitter(bool in_reasoning = false) : state_(in_reasoning ? kReasoning : kStart) {}

  // Adds text; appends what is now decided to reasoning and content.
  void push(std::string_view text, std::string& reasoning, std::string& content);
  void flush(std::string& reasoning, std::string& content);

 private:
  enum State { kStart, kReasoning, kAnswerStart, kAnswer } state_;
  std::string held_;
};

}  // namespace dsinfer::serve
