// Fuzzes the chat template (tokenizer/chat_template.h) with DeepSeek-V3's real tokenizer and
// template from assets/: the input is the JSON of an OpenAI "messages" array. Malformed messages
// must throw dsinfer::Error; well-formed ones must render (with and without the generation
// prompt) to text that starts with BOS, where the render without the prompt is a prefix of the
// one with it, and the rendered text must encode to ids in the vocabulary that decode back to it.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "fuzz_assets.h"
#include "fuzz_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

using namespace dsinfer;

namespace {

// The real tokenizer, with the template this target is about.
const tokenizer::Tokenizer& deepseek_v3() {
  static const bool checked = [] {
    FUZZ_CHECK(tokenizer::is_deepseek_v3_template(fuzz::deepseek_v3_tokenizer().chat_template()));
    return true;
  }();
  (void)checked;
  return fuzz::deepseek_v3_tokenizer();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  deepseek_v3();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const tokenizer::Tokenizer& tok = deepseek_v3();
  // What parse_request does with the body's "messages".
  std::vector<tokenizer::ChatMessage> messages;
  try {
    messages = tokenizer::chat_messages_from_json(
        parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "messages"));
  } catch (const Error&) {
    return 0;
  }
  std::string bare = tok.render_chat(messages, false);
  std::string prompted = tok.render_chat(messages, true);
  FUZZ_CHECK(bare.starts_with(tok.bos_token()));
  FUZZ_CHECK(prompted.starts_with(bare));
  for (const auto& m : messages)
    if (m.role == "user" || m.role == "system") FUZZ_CHECK(prompted.find(m.content) != std::string::npos);
  std::vector<int32_t> ids = tok.encode(prompted);
  FUZZ_CHECK(!ids.empty() && ids[0] == tok.bos_id());
  for (int32_t id : ids) FUZZ_CHECK(tok.is_valid_id(id));
  // DeepSeek-V3's byte-level BPE loses nothing: valid UTF-8 decodes back to itself.
  if (tokenizer::is_valid_utf8(prompted)) FUZZ_CHECK(tok.decode(ids) == prompted);
  return 0;
}
