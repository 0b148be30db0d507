#include "model/dump.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "base/error.h"
#include "base/npy.h"

namespace dsinfer::model {

namespace {

int64_t parse_layer(const std::string& s, const std::string& spec) {
  check(!s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 7,
        "DSINFER_DUMP: '", s, "' in '", spec, "' is not a layer number");
  return std::stoll(s);
}

}  // namespace

Dump Dump::parse(const std::string& spec, std::string dir) {
  Dump d;
  d.dir_ = std::move(dir);
  std::stringstream items(spec);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    Rule r;
    size_t colon = item.find(':');
    r.name = item.substr(0, colon);
    check(!r.name.empty(), "DSINFER_DUMP: an item of '", spec, "' has no name (name[:layers])");
    if (colon != std::string::npos) {
      std::string layers = item.substr(colon + 1);
      if (layers != "*") {
        size_t dash = layers.find('-');
        r.first = parse_layer(layers.substr(0, dash), spec);
        r.last = dash == std::string::npos ? r.first : parse_layer(layers.substr(dash + 1), spec);
        check(r.last >= r.first, "DSINFER_DUMP: empty layer range '", layers, "'");
      }
    }
    d.rules_.push_back(r);
  }
  if (d.enabled()) std::filesystem::create_directories(d.dir_);
  return d;
}

Dump Dump::from_environment() {
  const char* spec = std::getenv("DSINFER_DUMP");
  if (!spec || !*spec) return {};
  const char* dir = std::getenv("DSINFER_DUMP_DIR");
  return parse(spec, dir && *dir ? dir : "dsinfer-dump");
}

void Dump::write(const char* name, int64_t layer, const float* data, int64_t rows, int64_t cols) const {
  for (const Rule& r : rules_) {
    if (r.name != "*" && r.name != name) continue;
    if (layer >= 0 && (layer < r.first || (r.last >= 0 && layer > r.last))) continue;
    std::string file = dir_ + "/" + name + (layer >= 0 ? ".L" + std::to_string(layer) : "") + ".s" +
                       std::to_string(step_) + ".npy";
    write_npy_f32(file, data, {rows, cols});
    return;
  }
}

}  // namespace dsinfer::model
