#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "base/error.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace dsinfer::tokenizer {

namespace {

// Per-thread matching state. The JIT stack grows to 16 MiB so patterns such as \s+(?!\S) on a
// 100,000-space input neither overflow nor fall back to the interpreter.
struct ThreadState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ThreadState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 << 10, 16 << 20, nullptr);
    if (!data || !context || !stack) throw std::bad_alloc();
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

Regex::Regex(const std::string& pattern, const std::string& what) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_NO_UTF_CHECK, &err,
                                   &offset, nullptr);
  if (!code)
    fail(what, ": regex '", pattern, "' does not compile at offset ", offset, ": ", pcre2_message(err));
  // JIT is a speed-up, not a requirement: a platform without it still matches, just slower.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

bool Regex::find(std::string_view subject, size_t from, Span& match) const {
  ThreadState& ts = thread_state();
  // The caller validated the whole input once; checking again on every call would make
  // tokenization quadratic in the length of a piece.
  int rc = pcre2_match(static_cast<pcre2_code*>(code_), reinterpret_cast<PCRE2_SPTR>(subject.data()),
                       subject.size(), from, PCRE2_NO_UTF_CHECK, ts.data, ts.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0)
    fail("regex '", pattern_, "' failed on a ", subject.size(), "-byte input: ", pcre2_message(rc));
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.data);
  match.begin = ov[0];
  match.end = ov[1];
  return true;
}

void Regex::find_all(std::string_view subject, std::vector<Span>& out) const {
  size_t from = 0;
  size_t last_end = size_t(-1);
  Span m;
  while (from <= subject.size() && find(subject, from, m)) {
    if (m.begin == m.end && m.begin == last_end) {
      // Empty match where the previous one ended: step one character and look again.
      if (m.begin >= subject.size()) break;
      from = m.begin + utf8_lead_length(uint8_t(subject[m.begin]));
      continue;
    }
    out.push_back(m);
    last_end = m.end;
    from = m.end > m.begin ? m.end
                           : (m.end < subject.size() ? m.end + utf8_lead_length(uint8_t(subject[m.end]))
                                                     : subject.size() + 1);
  }
}

namespace {

// Long Oniguruma/Unicode names of the general categories that tokenizer regexes use.
std::string_view short_property(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kNames[] = {
      {"Letter", "L"}, {"Mark", "M"}, {"Number", "N"}, {"Punctuation", "P"}, {"Symbol", "S"},
      {"Separator", "Z"}, {"Uppercase_Letter", "Lu"}, {"Lowercase_Letter", "Ll"}, {"Decimal_Number", "Nd"},
      {"Alpha", "Alphabetic"}, {"Space", "White_Space"}};
  for (auto& [long_name, short_name] : kNames)
    if (name == long_name) return short_name;
  return name;
}

// The body of a character class for \p{name}, extended to Unicode 16.0.
std::string property_body(std::string_view name) {
  std::string_view shortname = short_property(name);
  return str("\\p{", shortname, "}", unicode_property_additions(shortname));
}

}  // namespace

std::string translate_onig_pattern(std::string_view p) {
  // Class bodies with the Oniguruma meanings, usable both inside and outside brackets.
  const std::string space = "\\t\\n\\x0B\\f\\r\\x{85}" + property_body("Z");
  const std::string word = property_body("L") + property_body("M") + property_body("Nd") + property_body("Pc");
  const std::string digit = property_body("Nd");
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  // A class body: inside brackets as it is, outside wrapped in (possibly negated) brackets. A
  // negated body cannot join an enclosing class; PCRE2's own escape is kept there (it differs
  // only on characters new since Unicode 14 and at U+0085).
  auto body = [&](const std::string& b, bool negated, std::string_view pcre_escape) {
    if (!in_class) out += (negated ? "[^" : "[") + b + "]";
    else if (!negated) out += b;
    else out += pcre_escape;
  };
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      ++i;
      switch (e) {
        case 's': body(space, false, ""); break;
        case 'S': body(space, true, "\\S"); break;
        case 'w': body(word, false, ""); break;
        case 'W': body(word, true, "\\W"); break;
        case 'd': body(digit, false, ""); break;
        case 'D': body(digit, true, "\\D"); break;
        case 'h': body("0-9a-fA-F", false, ""); break;  // Oniguruma's \h is a hex digit
        case 'H': body("0-9a-fA-F", true, "\\H"); break;
        case 'p':
        case 'P': {
          size_t close = i + 1 < p.size() && p[i + 1] == '{' ? p.find('}', i + 1) : std::string_view::npos;
          if (close == std::string_view::npos) {
            out += '\\';
            out += e;
            break;
          }
          std::string_view name = p.substr(i + 2, close - i - 2);
          bool negated = e == 'P';
          if (!name.empty() && name[0] == '^') negated = !negated, name.remove_prefix(1);
          std::string b = property_body(name);
          body(b, negated, str("\\", e, "{", p.substr(i + 2, close - i - 2), "}"));
          i = close;
          break;
        }
        default:
          out += '\\';
          out += e;
          // Copy \x{...} whole so its contents are not rewritten.
          if (e == 'x' && i + 1 < p.size() && p[i + 1] == '{') {
            size_t close = p.find('}', i + 1);
            if (close != std::string_view::npos) {
              out.append(p.substr(i + 1, close - i));
              i = close;
            }
          }
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += "\\]", ++i;
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      size_t close = p.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(p.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace dsinfer::tokenizer
