#include "parallel/eplb_load.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"

namespace dsinfer::parallel {

using nlohmann::json;

namespace {

// Rows and columns are stored as int; anything larger is certainly not a load matrix.
constexpr size_t kMaxDim = size_t(1) << 24;

void check_entry(double v, const std::string& source, size_t layer, size_t expert) {
  if (std::isnan(v)) fail(source, ": load[", layer, "][", expert, "] is NaN; loads must be non-negative numbers");
  if (std::isinf(v)) fail(source, ": load[", layer, "][", expert, "] is infinite; loads must be finite");
  if (v < 0) fail(source, ": load[", layer, "][", expert, "] = ", v, " is negative; loads must be non-negative");
}

}  // namespace

void validate_expert_load(const ExpertLoad& load) {
  check(load.num_layers > 0 && load.num_experts > 0, "expert load is empty (", load.num_layers, " layers x ",
        load.num_experts, " experts); it needs at least one layer and one expert");
  check(load.values.size() == size_t(load.num_layers) * load.num_experts, "expert load holds ", load.values.size(),
        " values, expected ", load.num_layers, " x ", load.num_experts);
  for (int l = 0; l < load.num_layers; ++l)
    for (int e = 0; e < load.num_experts; ++e) check_entry(load.at(l, e), "expert load", size_t(l), size_t(e));
}

ExpertLoad make_expert_load(const std::vector<std::vector<double>>& rows) {
  check(!rows.empty() && !rows[0].empty(), "expert load is empty; it needs at least one layer and one expert");
  check(rows.size() < kMaxDim && rows[0].size() < kMaxDim, "expert load is too large (", rows.size(), " x ",
        rows[0].size(), ")");
  ExpertLoad load(int(rows.size()), int(rows[0].size()));
  for (size_t l = 0; l < rows.size(); ++l) {
    check(rows[l].size() == rows[0].size(), "expert load is ragged: layer ", l, " has ", rows[l].size(),
          " experts but layer 0 has ", rows[0].size());
    for (size_t e = 0; e < rows[l].size(); ++e) load.at(int(l), int(e)) = rows[l][e];
  }
  validate_expert_load(load);
  return load;
}

ExpertLoad parse_expert_load_json(const std::string& text, const std::string& source) {
  // Nesting-limited like every JSON dsinfer reads: a deep document would overflow the stack later.
  const json doc = parse_json(text, source);
  const char* shape_hint = "; expected a JSON array of arrays, load[layer][expert], e.g. [[90,132,40],[20,107,104]]";
  check(doc.is_array(), source, ": top level is ", doc.type_name(), shape_hint);
  check(!doc.empty(), source, ": no layers", shape_hint);
  check(doc.size() < kMaxDim, source, ": too many layers (", doc.size(), ")");
  size_t experts = 0;
  for (size_t l = 0; l < doc.size(); ++l) {
    const json& row = doc[l];
    check(row.is_array(), source, ": layer ", l, " is ", row.type_name(), ", not an array", shape_hint);
    if (l == 0) {
      check(!row.empty(), source, ": layer 0 has no experts", shape_hint);
      check(row.size() < kMaxDim, source, ": too many experts (", row.size(), ")");
      experts = row.size();
    }
    check(row.size() == experts, source, ": ragged arrays: layer ", l, " has ", row.size(),
          " experts but layer 0 has ", experts);
  }
  ExpertLoad load(int(doc.size()), int(experts));
  for (size_t l = 0; l < doc.size(); ++l) {
    for (size_t e = 0; e < experts; ++e) {
      const json& v = doc[l][e];
      check(v.is_number(), source, ": load[", l, "][", e, "] is ", v.type_name(), ", not a number");
      double x = v.get<double>();
      check_entry(x, source, l, e);
      load.at(int(l), int(e)) = x;
    }
  }
  return load;
}

ExpertLoad read_expert_load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), path, ": cannot open the load file (does it exist and is it readable?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_expert_load_json(ss.str(), path);
}

std::string expert_load_to_json(const ExpertLoad& load) {
  validate_expert_load(load);
  std::string out = "[\n";
  for (int l = 0; l < load.num_layers; ++l) {
    json row = json::array();
    for (int e = 0; e < load.num_experts; ++e) {
      double v = load.at(l, e);
      // Counts stay integers; anything else keeps full double precision.
      if (v == std::floor(v) && v < 9007199254740992.0)
        row.push_back(int64_t(v));
      else
        row.push_back(v);
    }
    out += "  " + row.dump() + (l + 1 < load.num_layers ? ",\n" : "\n");
  }
  out += "]\n";
  return out;
}

void write_expert_load_file(const ExpertLoad& load, const std::string& path) {
  std::string text = expert_load_to_json(load);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  check(bool(out), path, ": cannot open for writing (does the directory exist?)");
  out << text;
  out.close();
  check(!out.fail(), path, ": write failed (disk full?)");
}

}  // namespace dsinfer::parallel
