#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace dsinfer::app {

namespace {

template <typename... Parts>
[[noreturn]] void usage(Parts&&... parts) {
  throw UsageError(str(std::forward<Parts>(parts)...));
}

// "[0, 65535]", "(0, 4096]", "at least 1", "at most 5": the range as a user reads it.
template <typename T>
std::string range_text(T lo, T hi, bool lo_open = false) {
  const bool no_lo = lo == std::numeric_limits<T>::lowest(), no_hi = hi == std::numeric_limits<T>::max();
  if (no_lo && no_hi) return "";
  if (no_hi) return str(lo_open ? " greater than " : " at least ", lo);
  if (no_lo) return str(" at most ", hi);
  return str(" in ", lo_open ? "(" : "[", lo, ", ", hi, "]");
}

}  // namespace

Args::Args(std::string command, const std::vector<std::string>& argv) : command_(std::move(command)) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      values_[name.substr(0, eq)] = name.substr(eq + 1);
    } else if (i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0) {
      values_[name] = argv[++i];
    } else {
      values_[name] = std::nullopt;
    }
  }
}

bool Args::flag(const std::string& name) {
  used_.insert(name);
  auto it = values_.find(name);
  if (it == values_.end()) return false;
  // A switch may still be followed by a positional word (`--json extra`); treat that as an error.
  if (it->second) fail("--", name, " takes no value (got '", *it->second, "')");
  return true;
}

std::optional<std::string> Args::get(const std::string& name) {
  used_.insert(name);
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  if (!it->second) fail("--", name, " needs a value");
  return it->second;
}

std::string Args::require(const std::string& name) {
  auto v = get(name);
  if (!v) fail("--", name, " is required (see dsinfer ", command_, " --help)");
  return *v;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) {
  auto v = get(name);
  return v ? *v : fallback;
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  auto v = get(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v->c_str(), &end, 10);
  const std::string range = range_text(lo, hi);
  if (errno || end == v->c_str() || *end) usage("--", name, " must be an integer", range, ", got '", *v, "'");
  if (x < lo || x > hi) usage("--", name, " must be", range, ", got ", x);
  return x;
}

double Args::get_double(const std::string& name, double fallback, double lo, double hi, bool lo_open) {
  auto v = get(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  // strtod reads "inf" and "nan"; no flag means either, and either would slip through a range
  // check written as x < lo (NaN compares false) or overflow what is computed from it.
  const std::string range = range_text(lo, hi, lo_open);
  if (errno || end == v->c_str() || *end || !std::isfinite(x))
    usage("--", name, " must be a finite number", range, ", got '", *v, "'");
  if (x < lo || x > hi || (lo_open && x == lo)) usage("--", name, " must be", range, ", got ", x);
  return x;
}

void Args::finish() {
  for (auto& [name, value] : values_)
    if (!used_.count(name)) fail("unknown flag --", name, " (see dsinfer ", command_, " --help)");
  if (!positional_.empty()) fail("unexpected argument '", positional_[0], "'");
}

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag_name) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string tok = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(tok.c_str(), &end, 10);
    if (tok.empty() || errno || *end || v < 0 || v > INT32_MAX)
      fail("--", flag_name, ": '", tok, "' is not a token id (expected a comma-separated list like 5,17,301)");
    ids.push_back(int32_t(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

}  // namespace dsinfer::app

namespace dsinfer::app {

std::map<std::string, std::string> Args::given() const {
  std::map<std::string, std::string> out;
  for (auto& [name, value] : values_) out[name] = value ? *value : "(switch)";
  return out;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace dsinfer::app
