// The tokenizer the rest of dsinfer uses: loads a Hugging Face tokenizer.json (byte-level BPE
// with added tokens, normalizer, pre-tokenizer, decoder) plus tokenizer_config.json (BOS/EOS and
// the chat template) and encodes exactly as Hugging Face's Rust `tokenizers` does. Encoding adds
// no BOS and recognises special-token strings inside the text. A Tokenizer is immutable after
// loading, cheap to copy (the tables are shared) and safe to use from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsinfer::tokenizer {

struct ChatMessage;

class Tokenizer {
 public:
  // Reads model_dir/tokenizer.json and, when present, model_dir/tokenizer_config.json.
  static Tokenizer from_dir(const std::string& model_dir);
  // The same from the files' contents; config_json may be empty. `origin` names the source in
  // error messages.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json = {},
                             const std::string& origin = "tokenizer.json");

  // Invalid UTF-8 in text is first replaced by U+FFFD (what Hugging Face sees after the same
  // lossy conversion), never an error.
  std::vector<int32_t> encode(std::string_view text) const;
  void encode(std::string_view text, std::vector<int32_t>& out) const;  // appends
  // A text prompt as a model sees it: BOS first when tokenizer_config.json says add_bos_token
  // (as Hugging Face's tokenizer, and so vLLM and SGLang, prepare a plain-text prompt), then
  // encode(text). The one way every text prompt is tokenized (/v1/completions, generate).
  std::vector<int32_t> encode_prompt(std::string_view text) const;
  bool adds_bos() const;  // add_bos_token, and a BOS token exists

  // Throws Error for an id outside the vocabulary (Hugging Face silently drops it).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  int32_t bos_id() const;  // -1 when tokenizer_config.json names none
  int32_t eos_id() const;
  int32_t token_id(std::string_view token) const;  // -1 if absent; added tokens first
  size_t vocab_size() const;                        // one more than the largest id
  const std::string& id_to_token(int32_t id) const; // as written in tokenizer.json; throws when out of range
  bool is_special(int32_t id) const;  // an added token flagged "special"
  // Whether decode(..., skip_special_tokens=true) leaves this id out: Hugging Face drops a token
  // whose text is the content of a special token.
  bool skipped_as_special(int32_t id) const;
  bool is_valid_id(int32_t id) const;

  // The bytes token `id` adds to decoded text when the decoder is ByteLevel (see
  // StreamingDetokenizer).
  bool byte_level_decoding() const;
  const std::string& token_bytes(int32_t id) const;

  const std::string& bos_token() const;
  const std::string& eos_token() const;
  const std::string& chat_template() const;  // "" when tokenizer_config.json has none

  // Renders a conversation with this tokenizer's chat template. Only the DeepSeek-V3 template is
  // implemented natively; any other template is rejected with an Error naming the problem.
  std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  // Why render_chat cannot serve conversations with this tokenizer ("" when it can): no
  // template, a template dsinfer does not render, or one that renders nothing. Found once at
  // load by rendering a probe conversation (probe_chat_template), so a server can refuse chat
  // as its own shortcoming and warn at start instead of failing each request.
  const std::string& chat_template_problem() const;
  std::string probe_chat_template() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace dsinfer::tokenizer
