// FieldReader: typed, strict reads from one JSON object of a planner input file (workload,
// hardware profiles). Every failure names the file and the key, with the path of nested objects
// ("profiles[2].hbm_gb"), so a user can find and fix it; finish() rejects keys nobody read, so a
// misspelt key is an error instead of a silently ignored default.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace dsinfer::plan {

class FieldReader {
 public:
  // `origin` is the file name for messages; `path` the object's place inside it ("" at top).
  FieldReader(const nlohmann::json& object, std::string origin, std::string path = "");

  double number(const std::string& key);
  std::optional<double> optional_number(const std::string& key);
  double positive(const std::string& key);       // > 0
  double non_negative(const std::string& key);   // >= 0
  double fraction(const std::string& key);       // in (0, 1]
  int64_t integer(const std::string& key);
  int64_t positive_integer(const std::string& key);
  std::string string(const std::string& key);
  std::optional<std::string> optional_string(const std::string& key);
  const nlohmann::json& array(const std::string& key);  // non-empty
  const nlohmann::json* optional_array(const std::string& key);
  const nlohmann::json& object(const std::string& key);
  // Marks a key as known without reading it (free-text notes, source lists).
  void allow(const std::string& key);

  // Throws naming the first key that was never read.
  void finish() const;

  // "FILE: key 'path.key'" for messages raised by callers about a value they read.
  std::string where(const std::string& key) const;
  std::string child_path(const std::string& key) const;
  const std::string& origin() const { return origin_; }

 private:
  const nlohmann::json& require(const std::string& key);
  const nlohmann::json* find(const std::string& key);

  const nlohmann::json& object_;
  std::string origin_;
  std::string path_;
  std::set<std::string> read_;
};

}  // namespace dsinfer::plan
