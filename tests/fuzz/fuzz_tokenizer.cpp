// Fuzzes tokenizer loading and use (tokenizer/tokenizer.h): the input is NUL-separated fields,
//   tokenizer.json \0 tokenizer_config.json \0 text \0 text ...
// where an empty tokenizer.json stands for DeepSeek-V3's real one (assets/). A rejected tokenizer
// must throw dsinfer::Error. With an accepted one every text (any bytes) is encoded; every id
// must be in the vocabulary, decode must accept them (with and without skip_special_tokens), and
// the StreamingDetokenizer's pushes and flush must add up to decode() of the whole sequence, as
// its header promises. With DeepSeek-V3's tokenizer, decode(encode(text)) must give the text
// back (invalid UTF-8 replaced the way encode documents).
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "fuzz_assets.h"
#include "fuzz_util.h"
#include "tokenizer/streaming_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

using namespace dsinfer;

namespace {

const tokenizer::Tokenizer& deepseek_v3() { return fuzz::deepseek_v3_tokenizer(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = fuzz::split_fields(data, size, 6);
  // An empty tokenizer.json field stands for DeepSeek-V3's real one from assets/, loaded once:
  // arbitrary text against the production vocabulary, merges and pre-tokenizer regexes.
  const bool real = fields[0].empty() && fields.size() > 1;
  tokenizer::Tokenizer tok;
  try {
    tok = real ? deepseek_v3()
               : tokenizer::Tokenizer::from_json(fields[0], fields.size() > 1 ? fields[1] : std::string_view{});
  } catch (const Error&) {
    return 0;
  }
  const size_t vocab = tok.vocab_size();
  (void)tok.bos_id();
  (void)tok.eos_id();
  (void)tok.token_id(tok.bos_token());
  for (size_t i = 2; i < fields.size(); ++i) {
    std::vector<int32_t> ids = tok.encode(fields[i]);
    for (int32_t id : ids) {
      FUZZ_CHECK(id >= 0 && size_t(id) < vocab);
      FUZZ_CHECK(tok.is_valid_id(id));
      (void)tok.id_to_token(id);
      (void)tok.is_special(id);
      if (tok.byte_level_decoding()) (void)tok.token_bytes(id);
    }
    std::string text = tok.decode(ids);
    (void)tok.decode(ids, true);
    tokenizer::StreamingDetokenizer stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    FUZZ_CHECK(streamed == text);
    // Byte-level BPE over every byte loses nothing but invalid UTF-8 (encode's lossy repair).
    if (real) FUZZ_CHECK(text == tokenizer::utf8_lossy(fields[i]));
  }
  return 0;
}
