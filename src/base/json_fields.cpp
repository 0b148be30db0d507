#include "base/json_fields.h"

#include <cmath>

namespace dsinfer {

using nlohmann::json;

namespace {

constexpr size_t kMaxShownBytes = 80;
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string describe(IntRange r) {
  constexpr int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  if (r.min == lo && r.max == hi) return "an integer";
  if (r.min == 1 && r.max == hi) return "a positive integer";
  if (r.min == 0 && r.max == hi) return "a non-negative integer";
  if (r.max == hi) return str("an integer >= ", r.min);
  if (r.min == lo) return str("an integer <= ", r.max);
  return str("an integer in [", r.min, ", ", r.max, "]");
}

std::string describe(NumberRange r) {
  const bool no_min = r.min == -kInf, no_max = r.max == kInf;
  if (no_min && no_max) return "a finite number";
  if (r.min == 0 && no_max) return r.min_open ? "a finite positive number (greater than zero)"
                                              : "a finite number and must not be negative";
  if (r.min == 0 && r.max == 1 && r.min_open && !r.max_open) return "a fraction in (0, 1]";
  if (no_max) return str("a finite number ", r.min_open ? "> " : ">= ", r.min);
  if (no_min) return str("a finite number ", r.max_open ? "< " : "<= ", r.max);
  return str("a number in ", r.min_open ? "(" : "[", r.min, ", ", r.max, r.max_open ? ")" : "]");
}

}  // namespace

bool NumberRange::contains(double v) const {
  return std::isfinite(v) && (min_open ? v > min : v >= min) && (max_open ? v < max : v <= max);
}

std::string shown_json(const json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) return str(v.get<double>());
  std::string s;
  if (v.is_string() && v.get_ref<const std::string&>().size() > kMaxShownBytes) {
    // Not dumped whole: a 100 MB string would be copied only to be cut.
    s = json(v.get_ref<const std::string&>().substr(0, kMaxShownBytes)).dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (s.size() <= kMaxShownBytes) return s;
  size_t cut = kMaxShownBytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return s.substr(0, cut) + "...";
}

FieldReader::FieldReader(const json& object, std::string origin, std::string path, FieldStyle style)
    : object_(object), origin_(std::move(origin)), path_(std::move(path)), style_(style) {
  if (object_.is_object()) return;
  std::string prefix = origin_.empty() ? "" : origin_ + ": ";
  if (path_.empty()) throw FieldError(str(prefix, "the top level must be a JSON object, got ", shown_json(object_)), "");
  throw FieldError(str(prefix, style_.noun, " '", path_, "' must be a JSON object, got ", shown_json(object_)), path_);
}

std::string FieldReader::child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

std::string FieldReader::where(const std::string& key) const {
  return str(origin_.empty() ? "" : origin_ + ": ", style_.noun, " '", child_path(key), "'");
}

void FieldReader::throw_about(const std::string& key, const std::string& index, const std::string& problem) const {
  throw FieldError(str(where(key + index), " ", problem), child_path(key));
}

void FieldReader::mark_read(const std::string& key) {
  if (style_.unknown_keys == UnknownKeys::kReject) read_.insert(key);
}

bool FieldReader::has(const std::string& key) const {
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

const json* FieldReader::optional_value(const std::string& key) {
  mark_read(key);
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& FieldReader::require(const std::string& key) {
  const json* v = optional_value(key);
  if (!v) throw FieldError(str(origin_.empty() ? "" : origin_ + ": ", "missing ", style_.noun, " '", child_path(key), "'"),
                           child_path(key));
  return *v;
}

const json& FieldReader::value(const std::string& key) { return require(key); }

double FieldReader::number_value(const json& v, const std::string& key, const std::string& index,
                                 NumberRange range) const {
  if (!v.is_number()) throw_about(key, index, str("must be a number, got ", shown_json(v)));
  if (!range.contains(v.get<double>())) throw_about(key, index, str("must be ", describe(range), ", got ", shown_json(v)));
  return v.get<double>();
}

double FieldReader::number(const std::string& key, NumberRange range) {
  return number_value(require(key), key, "", range);
}

std::optional<double> FieldReader::optional_number(const std::string& key, NumberRange range) {
  const json* v = optional_value(key);
  if (!v) return std::nullopt;
  return number_value(*v, key, "", range);
}

double FieldReader::number_or(const std::string& key, double fallback, NumberRange range) {
  return optional_number(key, range).value_or(fallback);
}

int64_t FieldReader::integer_value(const json& v, const std::string& key, const std::string& index,
                                   IntRange range) const {
  bool exact = false, too_wide = false;
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    too_wide = v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max());
    exact = !too_wide;
    if (exact) x = int64_t(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    exact = true;
    x = v.get<int64_t>();
  } else if (v.is_number_float()) {
    // Range first: converting a double outside int64_t (1e300) to an integer is undefined.
    double d = v.get<double>();
    if (d >= -0x1p63 && d < 0x1p63) {
      exact = d == std::trunc(d);
      if (exact) x = int64_t(d);
    } else {
      too_wide = std::isfinite(d) && d == std::trunc(d);
    }
  }
  if (!exact)
    throw_about(key, index, str("must be an integer, got ", shown_json(v), too_wide ? ", which does not fit in 64 bits" : ""));
  if (!range.contains(x)) throw_about(key, index, str("must be ", describe(range), ", got ", shown_json(v)));
  return x;
}

int64_t FieldReader::integer(const std::string& key, IntRange range) {
  return integer_value(require(key), key, "", range);
}

std::optional<int64_t> FieldReader::optional_integer(const std::string& key, IntRange range) {
  const json* v = optional_value(key);
  if (!v) return std::nullopt;
  return integer_value(*v, key, "", range);
}

int64_t FieldReader::integer_or(const std::string& key, int64_t fallback, IntRange range) {
  return optional_integer(key, range).value_or(fallback);
}

bool FieldReader::boolean(const std::string& key) {
  const json& v = require(key);
  if (!v.is_boolean()) fail(key, "must be true or false, got ", shown_json(v));
  return v.get<bool>();
}

bool FieldReader::boolean_or(const std::string& key, bool fallback) {
  if (!optional_value(key)) return fallback;
  return boolean(key);
}

std::string FieldReader::string(const std::string& key) {
  const json& v = require(key);
  if (!v.is_string()) fail(key, "must be a string, got ", shown_json(v));
  return v.get<std::string>();
}

std::optional<std::string> FieldReader::optional_string(const std::string& key) {
  if (!optional_value(key)) return std::nullopt;
  return string(key);
}

std::string FieldReader::string_or(const std::string& key, const std::string& fallback) {
  return optional_string(key).value_or(fallback);
}

size_t FieldReader::choice_index(const std::string& key, const std::vector<std::string_view>& names) {
  const json& v = require(key);
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == s) return i;
  }
  std::string list;
  for (size_t i = 0; i < names.size(); ++i)
    list += str(i == 0 ? "" : i + 1 == names.size() ? " or " : ", ", "\"", names[i], "\"");
  fail(key, "must be ", names.size() == 1 ? "" : "one of ", list, ", got ", shown_json(v));
}

const json& FieldReader::array(const std::string& key, size_t min_size) {
  const json& v = require(key);
  if (!v.is_array() || v.size() < min_size)
    fail(key, "must be a ", min_size == 0 ? "list" : min_size == 1 ? "non-empty list" : str("list of at least ", min_size, " values"),
         ", got ", shown_json(v));
  return v;
}

const json* FieldReader::optional_array(const std::string& key, size_t min_size) {
  if (!optional_value(key)) return nullptr;
  return &array(key, min_size);
}

std::vector<int64_t> FieldReader::integers(const std::string& key, IntRange range, size_t min_size) {
  const json& list = array(key, min_size);
  std::vector<int64_t> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) out.push_back(integer_value(list[i], key, str("[", i, "]"), range));
  return out;
}

std::vector<double> FieldReader::numbers(const std::string& key, NumberRange range, size_t min_size) {
  const json& list = array(key, min_size);
  std::vector<double> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) out.push_back(number_value(list[i], key, str("[", i, "]"), range));
  return out;
}

std::vector<std::string> FieldReader::strings(const std::string& key, size_t min_size) {
  const json& list = array(key, min_size);
  std::vector<std::string> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_string()) throw_about(key, str("[", i, "]"), str("must be a string, got ", shown_json(list[i])));
    out.push_back(list[i].get<std::string>());
  }
  return out;
}

const json& FieldReader::object(const std::string& key) {
  const json& v = require(key);
  if (!v.is_object()) fail(key, "must be an object, got ", shown_json(v));
  return v;
}

FieldReader FieldReader::reader(const std::string& key) { return FieldReader(object(key), origin_, child_path(key), style_); }

std::optional<FieldReader> FieldReader::optional_reader(const std::string& key) {
  if (!optional_value(key)) return std::nullopt;
  return reader(key);
}

void FieldReader::allow(const std::string& key) { mark_read(key); }

void FieldReader::finish() const {
  if (style_.unknown_keys != UnknownKeys::kReject) return;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (read_.count(it.key())) continue;
    std::string known;
    for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
    throw FieldError(str(origin_.empty() ? "" : origin_ + ": ", "unknown ", style_.noun, " '", child_path(it.key()),
                         "' (known ", style_.noun, "s here: ", known, ")"),
                     child_path(it.key()));
  }
}

}  // namespace dsinfer
