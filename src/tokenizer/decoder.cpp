#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

Decoder::Decoder() = default;
Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;

Decoder::Decoder(const nlohmann::json& spec) {
  if (spec.is_null()) return;
  none_ = false;
  add(spec);
}

void Decoder::add(const nlohmann::json& spec) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    fail("tokenizer.json: a decoder must be an object with a \"type\"");
  const std::string type = spec["type"].get<std::string>();
  Step st{};
  if (type == "Sequence") {
    auto it = spec.find("decoders");
    if (it == spec.end() || !it->is_array()) fail("tokenizer.json: Sequence decoder needs \"decoders\"");
    for (const auto& d : *it) add(d);
    return;
  } else if (type == "ByteLevel") {
    st.kind = Step::kByteLevel;
  } else if (type == "ByteFallback") {
    st.kind = Step::kByteFallback;
  } else if (type == "Fuse") {
    st.kind = Step::kFuse;
  } else if (type == "Replace") {
    st.kind = Step::kReplace;
    auto pat = spec.find("pattern");
    if (pat == spec.end() || !pat->is_object() || !pat->contains("String") || !(*pat)["String"].is_string())
      fail("tokenizer.json: only Replace decoders with a String pattern are supported");
    st.pattern = (*pat)["String"].get<std::string>();
    st.content = spec.value("content", "");
  } else if (type == "Strip") {
    st.kind = Step::kStrip;
    st.content = spec.value("content", " ");
    st.start = spec.value("start", size_t(0));
    st.stop = spec.value("stop", size_t(0));
  } else {
    fail("tokenizer.json: decoder type '", type,
         "' is not supported (supported: ByteLevel, Sequence, ByteFallback, Fuse, Replace, Strip)");
  }
  steps_.push_back(std::move(st));
}

namespace {

// "<0x41>" -> 0x41, or -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    char c = t[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

void strip_char(std::string& t, const std::string& ch, size_t start, size_t stop) {
  if (ch.empty()) return;
  size_t b = 0;
  for (size_t k = 0; k < start && t.compare(b, ch.size(), ch) == 0; ++k) b += ch.size();
  size_t e = t.size();
  for (size_t k = 0; k < stop && e >= b + ch.size() && t.compare(e - ch.size(), ch.size(), ch) == 0; ++k)
    e -= ch.size();
  t = t.substr(b, e - b);
}

}  // namespace

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (none_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Step::kByteLevel: {
        std::string bytes;
        for (const std::string& t : tokens) {
          auto b = byte_level_to_bytes(t);
          bytes += b ? *b : t;
        }
        tokens.assign(1, utf8_lossy(bytes));
        break;
      }
      case Step::kByteFallback: {
        std::vector<std::string> out;
        std::string pending;
        auto flush = [&] {
          if (pending.empty()) return;
          if (is_valid_utf8(pending)) {
            out.push_back(pending);
          } else {
            // Invalid byte runs become one U+FFFD per byte in Hugging Face's ByteFallback.
            for (size_t k = 0; k < pending.size(); ++k) out.push_back("\xEF\xBF\xBD");
          }
          pending.clear();
        };
        for (const std::string& t : tokens) {
          int b = parse_byte_token(t);
          if (b >= 0) {
            pending.push_back(char(b));
          } else {
            flush();
            out.push_back(t);
          }
        }
        flush();
        tokens.swap(out);
        break;
      }
      case Step::kFuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens.assign(1, all);
        break;
      }
      case Step::kReplace:
        for (std::string& t : tokens) {
          if (st.pattern.empty()) continue;
          std::string out;
          size_t prev = 0;
          for (size_t p = t.find(st.pattern); p != std::string::npos; p = t.find(st.pattern, p + st.pattern.size())) {
            out.append(t, prev, p - prev);
            out += st.content;
            prev = p + st.pattern.size();
          }
          out.append(t, prev, std::string::npos);
          t.swap(out);
        }
        break;
      case Step::kStrip:
        for (std::string& t : tokens) strip_char(t, st.content, st.start, st.stop);
        break;
    }
  }
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace dsinfer::tokenizer
