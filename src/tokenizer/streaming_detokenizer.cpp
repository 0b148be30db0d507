#include "tokenizer/streaming_detokenizer.h"

#include "base/error.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tok_(tokenizer), skip_special_(skip_special_tokens) {
  pending_.reserve(kHeldBytes);  // the longest token's bytes plus an unfinished character
}

std::string StreamingDetokenizer::push(int32_t id) {
  std::string out;
  push(id, out);
  return out;
}

std::string StreamingDetokenizer::flush() {
  std::string out;
  flush(out);
  return out;
}

void StreamingDetokenizer::push(int32_t id, std::string& out) {
  if (!tok_.is_valid_id(id))
    fail("token id ", id, " is out of range (the vocabulary has ids 0..", tok_.vocab_size() - 1, ")");
  if (skip_special_ && tok_.skipped_as_special(id)) return;
  if (tok_.byte_level_decoding()) {
    pending_ += tok_.token_bytes(id);
    size_t n = utf8_emittable_prefix(pending_);
    append_utf8_lossy(std::string_view(pending_).substr(0, n), out);
    pending_.erase(0, n);
    return;
  }
  // Other decoders may look at neighbouring tokens (Strip, ByteFallback), so decode a window
  // and emit what it added once it no longer ends in a replacement character.
  ids_.push_back(id);
  std::vector<int32_t> before(ids_.begin() + prefix_, ids_.begin() + read_);
  std::vector<int32_t> now(ids_.begin() + prefix_, ids_.end());
  std::string prefix_text = tok_.decode(before, skip_special_);
  std::string text = tok_.decode(now, skip_special_);
  if (text.size() <= prefix_text.size() || text.compare(text.size() >= 3 ? text.size() - 3 : 0, 3, "\xEF\xBF\xBD") == 0)
    return;
  out.append(text, prefix_text.size());
  prefix_ = read_;
  read_ = ids_.size();
}

void StreamingDetokenizer::flush(std::string& out) {
  if (tok_.byte_level_decoding()) {
    append_utf8_lossy(pending_, out);
    pending_.clear();
    return;
  }
  if (read_ < ids_.size()) {
    std::string prefix_text = tok_.decode(std::vector<int32_t>(ids_.begin() + prefix_, ids_.begin() + read_), skip_special_);
    std::string text = tok_.decode(std::vector<int32_t>(ids_.begin() + prefix_, ids_.end()), skip_special_);
    if (text.size() > prefix_text.size()) out.append(text, prefix_text.size());
  }
  ids_.clear();
  prefix_ = read_ = 0;
}

}  // namespace dsinfer::tokenizer
