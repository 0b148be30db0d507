// FieldReader: typed, strict reads of the keys of one JSON object that came from outside
// (config.json, tokenizer.json's pre-tokenizer, API request bodies, planner files): for those,
// the one place that knows how a field is read and what its error says. Every failure throws FieldError naming
// the origin and the key's path, e.g.
//   hw.json: key 'profiles[2].hbm_gb' must be a finite positive number (greater than zero), got -5
// and an API layer turns FieldError::path() into the offending parameter. A JSON null counts as
// absent (Python writes None for a default, OpenAI clients send null for "not set").
//
// Unknown keys are a per-use decision: files dsinfer defines (the planner's) reject keys nobody
// read, so a misspelt key is an error instead of a silently ignored default (finish()); files and
// bodies others define and keep extending (Hugging Face configs, tokenizer.json, OpenAI request
// bodies) are read leniently and their unknown keys ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsinfer {

// An Error about one field. path() is the field's place in the document ("max_tokens",
// "stream_options.include_usage", "profiles[2].hbm_gb"; "" for the document itself); an element's
// index ("stop[1]") appears in the message but not in the path, which names the field.
class FieldError : public Error {
 public:
  FieldError(const std::string& message, std::string path) : Error(message), path_(std::move(path)) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Inclusive bounds for an integer read. Reads never convert a value outside int64_t (or outside
// these bounds), so a caller narrowing to int passes max = INT32_MAX instead of truncating.
struct IntRange {
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();

  static constexpr IntRange positive(int64_t max = std::numeric_limits<int64_t>::max()) { return {1, max}; }
  static constexpr IntRange non_negative(int64_t max = std::numeric_limits<int64_t>::max()) { return {0, max}; }
  constexpr bool contains(int64_t v) const { return v >= min && v <= max; }
};

// Bounds for a number read; every number read must also be finite (a json built in code can hold
// NaN or Inf even though JSON text cannot).
struct NumberRange {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;  // exclusive bounds

  static constexpr NumberRange positive() { return {0, std::numeric_limits<double>::infinity(), true, false}; }
  static constexpr NumberRange non_negative() { return {0, std::numeric_limits<double>::infinity(), false, false}; }
  static constexpr NumberRange fraction() { return {0, 1, true, false}; }  // (0, 1]
  static constexpr NumberRange at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }
  bool contains(double v) const;
};

enum class UnknownKeys { kReject, kIgnore };

struct FieldStyle {
  UnknownKeys unknown_keys = UnknownKeys::kReject;
  const char* noun = "key";  // what messages call an entry: "key" (planner files), "field" (config.json, API)
};

class FieldReader {
 public:
  using json = nlohmann::json;

  // `origin` names the document in messages (a file name; "" for an API body, whose client knows
  // what it sent); `path` is the object's place inside it ("" at the top). Throws FieldError
  // unless `object` is a JSON object. The reader refers to `object`, which must outlive it.
  FieldReader(const json& object, std::string origin, std::string path = "", FieldStyle style = {});
  FieldReader(json&& temporary, std::string origin, std::string path = "", FieldStyle style = {}) = delete;

  // Present and not null. Does not count as reading the key.
  bool has(const std::string& key) const;

  // Any value, for shapes the typed reads below do not cover (a string or a list of strings, an
  // id or a list of ids); report a bad one with fail(key, ...).
  const json& value(const std::string& key);
  const json* optional_value(const std::string& key);

  // Numbers: finite and within `range`.
  double number(const std::string& key, NumberRange range = {});
  std::optional<double> optional_number(const std::string& key, NumberRange range = {});
  double number_or(const std::string& key, double fallback, NumberRange range = {});

  // Integers: a JSON integer, or a number with no fractional part (5.0, 1e3), within int64_t and
  // `range`; anything larger (18446744073709551615, 1e300) is refused, never wrapped.
  int64_t integer(const std::string& key, IntRange range = {});
  std::optional<int64_t> optional_integer(const std::string& key, IntRange range = {});
  int64_t integer_or(const std::string& key, int64_t fallback, IntRange range = {});

  bool boolean(const std::string& key);
  bool boolean_or(const std::string& key, bool fallback);

  std::string string(const std::string& key);
  std::optional<std::string> optional_string(const std::string& key);
  std::string string_or(const std::string& key, const std::string& fallback);

  // A string naming one of `choices`, returned as its value: one_of<TopkMethod>("topk_method",
  // {{"greedy", TopkMethod::kGreedy}, ...}). The message lists every accepted name.
  template <typename E>
  using Choices = std::initializer_list<std::pair<std::string_view, std::type_identity_t<E>>>;
  template <typename E>
  E one_of(const std::string& key, Choices<E> choices) {
    return (choices.begin() + choice_index(key, names_of<E>(choices)))->second;
  }
  template <typename E>
  E one_of_or(const std::string& key, E fallback, Choices<E> choices) {
    if (!optional_value(key)) return fallback;
    return one_of<E>(key, choices);
  }

  // Lists. min_size 1 asks for a non-empty list. The element reads check every element and name
  // it ("sources[3]").
  const json& array(const std::string& key, size_t min_size = 0);
  const json* optional_array(const std::string& key, size_t min_size = 0);
  std::vector<int64_t> integers(const std::string& key, IntRange range = {}, size_t min_size = 0);
  std::vector<double> numbers(const std::string& key, NumberRange range = {}, size_t min_size = 0);
  std::vector<std::string> strings(const std::string& key, size_t min_size = 0);

  // Nested objects: the object itself, or a reader of it with the same origin and style whose
  // messages name the nested path ("rope_scaling.factor").
  const json& object(const std::string& key);
  FieldReader reader(const std::string& key);
  std::optional<FieldReader> optional_reader(const std::string& key);

  // Marks a key as known without reading it (free-text notes).
  void allow(const std::string& key);

  // With UnknownKeys::kReject, throws naming the first key that was never read; else does nothing.
  void finish() const;

  // Throws FieldError "<origin>: <noun> '<path.key>' <parts...>": for problems a caller finds in
  // a value it read (a relation between fields, a shape the typed reads do not cover).
  template <typename... Parts>
  [[noreturn]] void fail(const std::string& key, Parts&&... parts) const {
    throw_about(key, "", str(std::forward<Parts>(parts)...));
  }

  // "<origin>: <noun> '<path.key>'", for messages composed by callers.
  std::string where(const std::string& key) const;
  std::string child_path(const std::string& key) const;
  const std::string& origin() const { return origin_; }
  const std::string& path() const { return path_; }
  const FieldStyle& style() const { return style_; }

 private:
  const json& require(const std::string& key);
  void mark_read(const std::string& key);
  size_t choice_index(const std::string& key, const std::vector<std::string_view>& names);
  template <typename E>
  static std::vector<std::string_view> names_of(Choices<E> choices) {
    std::vector<std::string_view> names;
    for (const auto& c : choices) names.push_back(c.first);
    return names;
  }
  int64_t integer_value(const json& v, const std::string& key, const std::string& index, IntRange range) const;
  double number_value(const json& v, const std::string& key, const std::string& index, NumberRange range) const;
  // `index` ("[3]") is appended to the path in the message only.
  [[noreturn]] void throw_about(const std::string& key, const std::string& index, const std::string& problem) const;

  const json& object_;
  std::string origin_;
  std::string path_;
  FieldStyle style_;
  std::set<std::string> read_;  // kept only when unknown keys are rejected
};

// A value as messages show it: its JSON text, cut short when long; NaN and Inf by name.
std::string shown_json(const nlohmann::json& v);

}  // namespace dsinfer
