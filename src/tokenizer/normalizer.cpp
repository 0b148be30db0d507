#include "tokenizer/normalizer.h"

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

Normalizer::Normalizer() = default;
Normalizer::~Normalizer() = default;
Normalizer::Normalizer(Normalizer&&) noexcept = default;
Normalizer& Normalizer::operator=(Normalizer&&) noexcept = default;

Normalizer::Normalizer(const nlohmann::json& spec) {
  if (!spec.is_null()) add(spec);
}

void Normalizer::add(const nlohmann::json& spec) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    fail("tokenizer.json: a normalizer must be an object with a \"type\"");
  const std::string type = spec["type"].get<std::string>();
  auto string_field = [&](const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) fail("tokenizer.json: ", type, " normalizer needs a string \"", key, "\"");
    return it->get<std::string>();
  };
  Step st;
  if (type == "Sequence") {
    auto it = spec.find("normalizers");
    if (it == spec.end() || !it->is_array()) fail("tokenizer.json: Sequence normalizer needs \"normalizers\"");
    for (const auto& s : *it) add(s);
    return;
  } else if (type == "NFC") {
    st.kind = Step::kNfc;
  } else if (type == "NFD") {
    st.kind = Step::kNfd;
  } else if (type == "NFKC") {
    st.kind = Step::kNfkc;
  } else if (type == "NFKD") {
    st.kind = Step::kNfkd;
  } else if (type == "Lowercase") {
    st.kind = Step::kLowercase;
  } else if (type == "Replace") {
    st.kind = Step::kReplace;
    auto pat = spec.find("pattern");
    if (pat == spec.end() || !pat->is_object()) fail("tokenizer.json: Replace normalizer needs a \"pattern\" object");
    if (pat->contains("Regex"))
      st.regex = std::make_unique<Regex>(translate_onig_pattern(string_field(*pat, "Regex")), "normalizer Replace");
    else
      st.pattern = string_field(*pat, "String");
    st.content = string_field(spec, "content");
  } else if (type == "Prepend") {
    st.kind = Step::kPrepend;
    st.content = string_field(spec, "prepend");
  } else if (type == "Strip") {
    st.kind = Step::kStrip;
    st.left = spec.value("strip_left", false);
    st.right = spec.value("strip_right", false);
  } else {
    fail("tokenizer.json: normalizer type '", type,
         "' is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip)");
  }
  steps_.push_back(std::move(st));
}

namespace {

void replace_all(std::string& s, const std::string& pattern, const std::string& content) {
  if (pattern.empty()) return;
  std::string out;
  size_t prev = 0;
  for (size_t pos = s.find(pattern); pos != std::string::npos; pos = s.find(pattern, pos + pattern.size())) {
    out.append(s, prev, pos - prev);
    out += content;
    prev = pos + pattern.size();
  }
  if (prev == 0) return;
  out.append(s, prev, std::string::npos);
  s.swap(out);
}

void replace_regex(std::string& s, const Regex& re, const std::string& content) {
  std::vector<Span> spans;
  re.find_all(s, spans);
  if (spans.empty()) return;
  std::string out;
  size_t prev = 0;
  for (const Span& m : spans) {
    out.append(s, prev, m.begin - prev);
    out += content;
    prev = m.end;
  }
  out.append(s, prev, std::string::npos);
  s.swap(out);
}

void strip(std::string& s, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e) {
      size_t k = b;
      if (!is_unicode_whitespace(next_code_point(s, k))) break;
      b = k;
    }
  }
  if (right) {
    while (e > b) {
      size_t k = e - 1;
      while (k > b && (uint8_t(s[k]) & 0xC0) == 0x80) --k;
      size_t kk = k;
      if (!is_unicode_whitespace(next_code_point(s, kk))) break;
      e = k;
    }
  }
  s = s.substr(b, e - b);
}

}  // namespace

void Normalizer::normalize(std::string& s) const {
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Step::kNfc: s = unicode_normalize(s, /*compat=*/false, /*compose=*/true); break;
      case Step::kNfd: s = unicode_normalize(s, false, false); break;
      case Step::kNfkc: s = unicode_normalize(s, true, true); break;
      case Step::kNfkd: s = unicode_normalize(s, true, false); break;
      case Step::kLowercase: s = unicode_lowercase(s); break;
      case Step::kReplace:
        if (st.regex) replace_regex(s, *st.regex, st.content);
        else replace_all(s, st.pattern, st.content);
        break;
      case Step::kPrepend:
        if (!s.empty()) s.insert(0, st.content);
        break;
      case Step::kStrip: strip(s, st.left, st.right); break;
    }
  }
}

}  // namespace dsinfer::tokenizer
