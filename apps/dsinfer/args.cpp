#include "args.h"

#include <cerrno>
#include <cstdlib>

#include "base/error.h"

namespace dsinfer::app {

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

int64_t Args::get_int(const std::string& name, int64_t fallback) {
  auto v = get(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v->c_str(), &end, 10);
  if (errno || end == v->c_str() || *end) fail("--", name, " must be an integer, got '", *v, "'");
  return x;
}

double Args::get_double(const std::string& name, double fallback) {
  auto v = get(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (errno || end == v->c_str() || *end) fail("--", name, " must be a number, got '", *v, "'");
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
