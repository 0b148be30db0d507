#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_fields.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

namespace {

struct Part {
  size_t begin, end;
  bool flag;  // before the behavior: "is a match"; after it: "remove"
};

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

// tokenizer.json belongs to Hugging Face, which adds fields over time (prepend_scheme,
// trim_offsets): fields dsinfer does not need are ignored. Messages say "tokenizer.json";
// Tokenizer::from_json names the real file instead.
constexpr FieldStyle kTokenizerStyle{UnknownKeys::kIgnore, "field"};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;

PreTokenizer::PreTokenizer(const nlohmann::json& spec) {
  if (!spec.is_null()) add(spec, "pre_tokenizer");
}

void PreTokenizer::add(const nlohmann::json& spec, const std::string& path) {
  FieldReader r(spec, "tokenizer.json", path, kTokenizerStyle);
  const std::string type = r.string("type");
  // Split must name its behavior; Punctuation's defaults to Isolated.
  auto behavior = [&r](bool required) {
    if (required) r.value("behavior");  // names the field when it is missing
    return r.one_of_or("behavior", SplitBehavior::kIsolated,
                       {{"Removed", SplitBehavior::kRemoved},
                        {"Isolated", SplitBehavior::kIsolated},
                        {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
                        {"MergedWithNext", SplitBehavior::kMergedWithNext},
                        {"Contiguous", SplitBehavior::kContiguous}});
  };
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
    const nlohmann::json& steps = r.array("pretokenizers");
    for (size_t i = 0; i < steps.size(); ++i) add(steps[i], str(r.child_path("pretokenizers"), "[", i, "]"));
  } else if (type == "Split") {
    FieldReader pattern = r.reader("pattern");
    SplitBehavior split = behavior(true);
    bool invert = r.boolean_or("invert", false);
    if (pattern.has("Regex")) {
      regex_step(pattern.string("Regex"), split, invert);
    } else if (pattern.has("String")) {
      Step st;
      st.literal = pattern.string("String");
      st.behavior = split;
      st.invert = invert;
      steps_.push_back(std::move(st));
    } else {
      r.fail("pattern", "must be {\"Regex\": ...} or {\"String\": ...}");
    }
  } else if (type == "ByteLevel") {
    Step st;
    st.kind = Step::kByteLevel;
    st.add_prefix_space = r.boolean_or("add_prefix_space", true);
    if (r.boolean_or("use_regex", true))
      st.regex = std::make_unique<Regex>(translate_onig_pattern(kByteLevelPattern), "pre_tokenizer ByteLevel");
    steps_.push_back(std::move(st));
    byte_level_ = true;
  } else if (type == "Digits") {
    // char::is_numeric is the N category; one match per digit, or per run when not individual.
    regex_step(r.boolean_or("individual_digits", false) ? "\\p{N}" : "\\p{N}+", SplitBehavior::kIsolated, false);
  } else if (type == "Whitespace") {
    regex_step("\\w+|[^\\w\\s]+", SplitBehavior::kRemoved, true);
  } else if (type == "WhitespaceSplit") {
    regex_step("\\s+", SplitBehavior::kRemoved, false);
  } else if (type == "Punctuation") {
    regex_step("[\\p{P}!-/:-@\\[-`{-~]", behavior(false), false);
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
