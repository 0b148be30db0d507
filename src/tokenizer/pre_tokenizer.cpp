#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

namespace {

struct Part {
  size_t begin, end;
  bool flag;  // before the behavior: "is a match"; after it: "remove"
};

std::string get_string(const nlohmann::json& j, const char* key, const char* what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) fail("tokenizer.json: ", what, " needs a string \"", key, "\"");
  return it->get<std::string>();
}

bool get_bool(const nlohmann::json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail("tokenizer.json: pre_tokenizer field \"", key, "\" must be true or false");
  return it->get<bool>();
}

// Per-thread scratch, one slot per step depth, so nested steps never share a buffer.
struct Scratch {
  std::vector<std::vector<Span>> spans;
  std::vector<std::vector<Part>> parts;
  std::vector<std::string> text;
};

Scratch& scratch(size_t depth) {
  thread_local Scratch s;
  if (s.spans.size() <= depth) {
    s.spans.resize(depth + 1);
    s.parts.resize(depth + 1);
    s.text.resize(depth + 1);
  }
  return s;
}

}  // namespace

SplitBehavior parse_split_behavior(const std::string& name) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  fail("tokenizer.json: unknown split behavior '", name,
       "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

PreTokenizer::PreTokenizer(const nlohmann::json& spec) {
  if (!spec.is_null()) add(spec);
}

void PreTokenizer::add(const nlohmann::json& spec) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    fail("tokenizer.json: a pre_tokenizer must be an object with a \"type\"");
  const std::string type = spec["type"].get<std::string>();
  if (byte_level_)
    fail("tokenizer.json: pre_tokenizer ", type, " after ByteLevel is not supported (it would see the byte-level "
         "alphabet instead of the text)");
  auto regex_step = [&](const std::string& onig, SplitBehavior behavior, bool invert) {
    Step st;
    st.regex = std::make_unique<Regex>(translate_onig_pattern(onig), "pre_tokenizer " + type);
    st.behavior = behavior;
    st.invert = invert;
    steps_.push_back(std::move(st));
  };
  if (type == "Sequence") {
    auto it = spec.find("pretokenizers");
    if (it == spec.end() || !it->is_array()) fail("tokenizer.json: Sequence pre_tokenizer needs \"pretokenizers\"");
    for (const auto& s : *it) add(s);
  } else if (type == "Split") {
    auto pat = spec.find("pattern");
    if (pat == spec.end() || !pat->is_object()) fail("tokenizer.json: Split pre_tokenizer needs a \"pattern\" object");
    SplitBehavior behavior = parse_split_behavior(get_string(spec, "behavior", "Split pre_tokenizer"));
    bool invert = get_bool(spec, "invert", false);
    if (pat->contains("Regex")) {
      regex_step(get_string(*pat, "Regex", "Split pattern"), behavior, invert);
    } else if (pat->contains("String")) {
      Step st;
      st.literal = get_string(*pat, "String", "Split pattern");
      st.behavior = behavior;
      st.invert = invert;
      steps_.push_back(std::move(st));
    } else {
      fail("tokenizer.json: Split pattern must be {\"Regex\": ...} or {\"String\": ...}");
    }
  } else if (type == "ByteLevel") {
    Step st;
    st.kind = Step::kByteLevel;
    st.add_prefix_space = get_bool(spec, "add_prefix_space", true);
    if (get_bool(spec, "use_regex", true))
      st.regex = std::make_unique<Regex>(translate_onig_pattern(kByteLevelPattern), "pre_tokenizer ByteLevel");
    steps_.push_back(std::move(st));
    byte_level_ = true;
  } else if (type == "Digits") {
    // char::is_numeric is the N category; one match per digit, or per run when not individual.
    regex_step(get_bool(spec, "individual_digits", false) ? "\\p{N}" : "\\p{N}+", SplitBehavior::kIsolated, false);
  } else if (type == "Whitespace") {
    regex_step("\\w+|[^\\w\\s]+", SplitBehavior::kRemoved, true);
  } else if (type == "WhitespaceSplit") {
    regex_step("\\s+", SplitBehavior::kRemoved, false);
  } else if (type == "Punctuation") {
    std::string behavior = spec.contains("behavior") ? get_string(spec, "behavior", "Punctuation") : "Isolated";
    regex_step("[\\p{P}!-/:-@\\[-`{-~]", parse_split_behavior(behavior), false);
  } else {
    fail("tokenizer.json: pre_tokenizer type '", type,
         "' is not supported (supported: Sequence, Split, ByteLevel, Digits, Whitespace, WhitespaceSplit, "
         "Punctuation)");
  }
}

void PreTokenizer::run(std::string_view text, PieceSink& sink) const { run_from(0, text, sink); }

void PreTokenizer::run_from(size_t step, std::string_view s, PieceSink& sink) const {
  if (s.empty()) return;
  if (step == steps_.size()) {
    sink.piece(s);
    return;
  }
  const Step& st = steps_[step];
  if (st.kind == Step::kByteLevel) {
    if (st.add_prefix_space && s[0] != ' ') {
      std::string& buf = scratch(step).text[step];
      buf.assign(1, ' ');
      buf.append(s);
      s = buf;  // deeper steps use deeper slots, so buf outlives them
    }
    if (!st.regex) {
      run_from(step + 1, s, sink);
      return;
    }
  }
  split(st, step, s, sink);
}

void PreTokenizer::split(const Step& st, size_t step, std::string_view s, PieceSink& sink) const {
  bool isolated = st.kind == Step::kByteLevel || st.behavior == SplitBehavior::kIsolated;
  if (isolated && st.regex) {
    // The common case streams: every match and every gap is a piece of its own.
    size_t from = 0, prev = 0, last_end = size_t(-1);
    Span m;
    while (from <= s.size() && st.regex->find(s, from, m)) {
      if (m.begin == m.end && m.begin == last_end) {
        // An empty match right where the last one ended is skipped, as Rust's find_iter does.
        if (m.begin >= s.size()) break;
        from = m.begin + utf8_lead_length(uint8_t(s[m.begin]));
        continue;
      }
      if (m.begin > prev) run_from(step + 1, s.substr(prev, m.begin - prev), sink);
      if (m.end > m.begin) run_from(step + 1, s.substr(m.begin, m.end - m.begin), sink);
      prev = last_end = m.end;
      from = m.end > m.begin ? m.end : (m.end < s.size() ? m.end + utf8_lead_length(uint8_t(s[m.end])) : s.size() + 1);
    }
    if (prev < s.size()) run_from(step + 1, s.substr(prev), sink);
    return;
  }

  Scratch& sc = scratch(step);
  std::vector<Span>& spans = sc.spans[step];
  std::vector<Part>& parts = sc.parts[step];
  spans.clear();
  parts.clear();
  if (st.regex) {
    st.regex->find_all(s, spans);
  } else if (!st.literal.empty()) {
    for (size_t pos = s.find(st.literal); pos != std::string_view::npos; pos = s.find(st.literal, pos + st.literal.size()))
      spans.push_back({pos, pos + st.literal.size()});
  }
  // Matches and the gaps between them, in order (Hugging Face's find_matches).
  size_t prev = 0;
  for (const Span& m : spans) {
    if (m.begin > prev) parts.push_back({prev, m.begin, false});
    parts.push_back({m.begin, m.end, true});
    prev = m.end;
  }
  if (prev < s.size()) parts.push_back({prev, s.size(), false});
  if (st.invert)
    for (Part& p : parts) p.flag = !p.flag;

  // Fold into pieces; afterwards flag means "remove".
  std::vector<Part> out;
  out.reserve(parts.size());
  bool previous_match = false;
  switch (st.behavior) {
    case SplitBehavior::kIsolated:
      for (Part p : parts) out.push_back({p.begin, p.end, false});
      break;
    case SplitBehavior::kRemoved:
      out = parts;
      break;
    case SplitBehavior::kContiguous:
      for (Part p : parts) {
        if (p.flag == previous_match && !out.empty()) out.back().end = p.end;
        else out.push_back({p.begin, p.end, false});
        previous_match = p.flag;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (Part p : parts) {
        if (p.flag && !previous_match && !out.empty()) out.back().end = p.end;
        else out.push_back({p.begin, p.end, false});
        previous_match = p.flag;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = parts.size(); k-- > 0;) {
        Part p = parts[k];
        if (p.flag && !previous_match && !out.empty()) out.back().begin = p.begin;
        else out.push_back({p.begin, p.end, false});
        previous_match = p.flag;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  for (const Part& p : out)
    if (!p.flag && p.end > p.begin) run_from(step + 1, s.substr(p.begin, p.end - p.begin), sink);
}

}  // namespace dsinfer::tokenizer
