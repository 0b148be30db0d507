// Flag parsing for subcommands: `--name value`, `--name=value` and bare `--switch`.
// A command reads the flags it knows, then calls finish(), which rejects every flag it did not
// read, so a typo is an error rather than silently ignored.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"

namespace dsinfer::app {

// A numeric flag that is not a number, not finite, or out of range: main() prints it and exits
// 2, the usual status for usage errors, where a failure while running exits 1. (Other flag
// mistakes, an unknown or missing flag, still exit 1: scripts and tests rely on it.)
class UsageError : public Error {
 public:
  using Error::Error;
};

class Args {
 public:
  Args(std::string command, const std::vector<std::string>& argv);

  // Flag given as a bare switch or with a value? Marks it as read.
  bool flag(const std::string& name);
  std::optional<std::string> get(const std::string& name);
  std::string require(const std::string& name);
  std::string get_or(const std::string& name, const std::string& fallback);
  // Numbers, checked at the boundary so no command sees an out-of-range value: an integer in
  // [lo, hi], or a finite number in [lo, hi] (never NaN or Inf), else UsageError naming the flag,
  // the range and what was given. `lo_open` excludes lo itself ("must be positive").
  int64_t get_int(const std::string& name, int64_t fallback, int64_t lo = std::numeric_limits<int64_t>::min(),
                  int64_t hi = std::numeric_limits<int64_t>::max());
  double get_double(const std::string& name, double fallback, double lo = -std::numeric_limits<double>::max(),
                    double hi = std::numeric_limits<double>::max(), bool lo_open = false);

  // Throws Error naming the first unknown flag or stray positional argument.
  void finish();

  const std::string& command() const { return command_; }
  // Every flag given, by name: what the ranks of a group compare (group_setup.h).
  std::map<std::string, std::string> given() const;

 private:
  std::string command_;
  std::map<std::string, std::optional<std::string>> values_;
  std::set<std::string> used_;
  std::vector<std::string> positional_;
};

// Splits "a,b,,c" into its non-empty comma-separated items ({"a", "b", "c"}).
std::vector<std::string> split_commas(const std::string& text);

// Parses "5,17,301" into ids; throws on anything that is not a comma-separated integer list.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag_name);

}  // namespace dsinfer::app
