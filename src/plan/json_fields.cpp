#include "plan/json_fields.h"

#include <cmath>

#include "base/error.h"

namespace dsinfer::plan {

using nlohmann::json;

FieldReader::FieldReader(const json& object, std::string origin, std::string path)
    : object_(object), origin_(std::move(origin)), path_(std::move(path)) {
  if (!object_.is_object())
    fail(origin_, ": ", path_.empty() ? std::string("the file") : "'" + path_ + "'",
         " must be a JSON object, got ", object_.dump());
}

std::string FieldReader::child_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

std::string FieldReader::where(const std::string& key) const {
  return str(origin_, ": key '", child_path(key), "'");
}

const json* FieldReader::find(const std::string& key) {
  read_.insert(key);
  auto it = object_.find(key);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& FieldReader::require(const std::string& key) {
  const json* v = find(key);
  if (!v) fail(origin_, ": missing key '", child_path(key), "'");
  return *v;
}

double FieldReader::number(const std::string& key) {
  const json& v = require(key);
  if (!v.is_number()) fail(where(key), " must be a number, got ", v.dump());
  double x = v.get<double>();
  if (!std::isfinite(x)) fail(where(key), " must be finite");
  return x;
}

std::optional<double> FieldReader::optional_number(const std::string& key) {
  if (!find(key)) return std::nullopt;
  return number(key);
}

double FieldReader::positive(const std::string& key) {
  double x = number(key);
  if (!(x > 0)) fail(where(key), " must be greater than zero, got ", x);
  return x;
}

double FieldReader::non_negative(const std::string& key) {
  double x = number(key);
  if (x < 0) fail(where(key), " must not be negative, got ", x);
  return x;
}

double FieldReader::fraction(const std::string& key) {
  double x = number(key);
  if (!(x > 0 && x <= 1)) fail(where(key), " must be a fraction in (0, 1], got ", x);
  return x;
}

int64_t FieldReader::integer(const std::string& key) {
  const json& v = require(key);
  if (!v.is_number_integer()) fail(where(key), " must be an integer, got ", v.dump());
  return v.get<int64_t>();
}

int64_t FieldReader::positive_integer(const std::string& key) {
  int64_t x = integer(key);
  if (x <= 0) fail(where(key), " must be a positive integer, got ", x);
  return x;
}

std::string FieldReader::string(const std::string& key) {
  const json& v = require(key);
  if (!v.is_string()) fail(where(key), " must be a string, got ", v.dump());
  return v.get<std::string>();
}

std::optional<std::string> FieldReader::optional_string(const std::string& key) {
  if (!find(key)) return std::nullopt;
  return string(key);
}

const json& FieldReader::array(const std::string& key) {
  const json& v = require(key);
  if (!v.is_array() || v.empty()) fail(where(key), " must be a non-empty list, got ", v.dump());
  return v;
}

const json* FieldReader::optional_array(const std::string& key) {
  if (!find(key)) return nullptr;
  return &array(key);
}

const json& FieldReader::object(const std::string& key) {
  const json& v = require(key);
  if (!v.is_object()) fail(where(key), " must be an object, got ", v.dump());
  return v;
}

void FieldReader::allow(const std::string& key) { read_.insert(key); }

void FieldReader::finish() const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (read_.count(it.key())) continue;
    std::string known;
    for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
    fail(origin_, ": unknown key '", child_path(it.key()), "' (known keys here: ", known, ")");
  }
}

}  // namespace dsinfer::plan
