#include "plan/hardware.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "base/read_file.h"
#include "base/json_fields.h"

namespace dsinfer::plan {

using nlohmann::json;

namespace {

constexpr double kTera = 1e12;
constexpr double kGiga = 1e9;
constexpr NumberRange kPositive = NumberRange::positive();
constexpr NumberRange kFraction = NumberRange::fraction();
// Counts stored as int.
constexpr IntRange kPositiveInt = IntRange::positive(INT32_MAX);

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower((unsigned char)c));
  return s;
}

std::vector<std::string> read_sources(FieldReader& r) {
  if (!r.has("sources")) return {};
  return r.strings("sources", 1);
}

HardwareProfile parse_profile(const json& j, const std::string& origin, const std::string& path) {
  FieldReader r(j, origin, path);
  HardwareProfile p;
  p.name = r.string("name");
  if (p.name.empty()) r.fail("name", "must not be empty");
  p.description = r.optional_string("description").value_or("");
  p.fp8_flops = r.number("fp8_dense_tflops", kPositive) * kTera;
  p.bf16_flops = r.number("bf16_dense_tflops", kPositive) * kTera;
  p.hbm_bandwidth = r.number("hbm_tb_per_s", kPositive) * kTera;
  p.hbm_bytes = r.number("hbm_gb", kPositive) * kGiga;
  p.nvlink_bandwidth = r.number("nvlink_gb_per_s", kPositive) * kGiga;
  p.nic_bandwidth = r.number("nic_gb_per_s", kPositive) * kGiga;
  p.sms = int(r.integer("sms", kPositiveInt));
  p.gpus_per_node = int(r.integer("gpus_per_node", kPositiveInt));
  p.sources = read_sources(r);
  r.finish();
  return p;
}

EpBandwidth parse_ep_row(const json& j, const std::string& origin, const std::string& path, bool latency_columns) {
  FieldReader r(j, origin, path);
  EpBandwidth b;
  b.ep = int(r.integer("ep", kPositiveInt));
  b.dispatch = r.number("dispatch_gb_per_s", kPositive) * kGiga;
  b.combine = r.number("combine_gb_per_s", kPositive) * kGiga;
  if (latency_columns) {
    // Published beside the bandwidths; kept for reference, the model uses the bandwidths.
    r.number("dispatch_us", kPositive);
    r.number("combine_us", kPositive);
  }
  r.finish();
  return b;
}

std::vector<EpBandwidth> parse_ep_table(FieldReader& parent, const std::string& key, bool latency_columns) {
  const json& rows = parent.array(key, 1);
  std::vector<EpBandwidth> out;
  for (size_t i = 0; i < rows.size(); ++i)
    out.push_back(parse_ep_row(rows[i], parent.origin(), str(parent.child_path(key), "[", i, "]"), latency_columns));
  for (size_t i = 1; i < out.size(); ++i)
    if (out[i].ep <= out[i - 1].ep)
      parent.fail(key, "must list rows in increasing 'ep' order");
  return out;
}

DeepEpReference parse_deepep(const json& j, const std::string& origin) {
  FieldReader r(j, origin, "deepep");
  DeepEpReference d;
  d.reference_nic = r.number("reference_nic_gb_per_s", kPositive) * kGiga;
  d.reference_nvlink = r.number("reference_nvlink_gb_per_s", kPositive) * kGiga;
  d.normal_intranode = parse_ep_row(r.object("normal_intranode"), origin, "deepep.normal_intranode", false);
  d.normal_internode = parse_ep_table(r, "normal_internode", false);
  d.low_latency_tokens = int(r.integer("low_latency_tokens", kPositiveInt));
  d.low_latency = parse_ep_table(r, "low_latency", true);
  d.normal_kernel_sms = int(r.integer("normal_kernel_sms", kPositiveInt));
  r.allow("note");
  read_sources(r);
  r.finish();
  return d;
}

KernelEfficiency parse_kernels(const json& j, const std::string& origin) {
  FieldReader r(j, origin, "kernels");
  KernelEfficiency k;
  k.gemm_compute = r.number("gemm_compute", kFraction);
  k.gemm_memory = r.number("gemm_memory", kFraction);
  k.attention_decode_compute = r.number("attention_decode_compute", kFraction);
  k.attention_decode_memory = r.number("attention_decode_memory", kFraction);
  k.elementwise_memory = r.number("elementwise_memory", kFraction);
  k.end_to_end = r.number("end_to_end", kFraction);
  const json& rows = r.array("attention_prefill_by_length", 1);
  for (size_t i = 0; i < rows.size(); ++i) {
    FieldReader row(rows[i], origin, str("kernels.attention_prefill_by_length[", i, "]"));
    double tokens = row.number("tokens", kPositive);
    double fraction = row.number("fraction", kFraction);
    row.finish();
    if (!k.attention_prefill_by_length.empty() && tokens <= k.attention_prefill_by_length.back().first)
      r.fail("attention_prefill_by_length", "must list rows in increasing 'tokens' order");
    k.attention_prefill_by_length.emplace_back(tokens, fraction);
  }
  r.allow("note");
  read_sources(r);
  r.finish();
  return k;
}

}  // namespace

double KernelEfficiency::attention_prefill(double tokens) const {
  const auto& t = attention_prefill_by_length;
  if (tokens <= t.front().first) return t.front().second;
  if (tokens >= t.back().first) return t.back().second;
  for (size_t i = 1; i < t.size(); ++i) {
    if (tokens > t[i].first) continue;
    double f = std::log(tokens / t[i - 1].first) / std::log(t[i].first / t[i - 1].first);
    return t[i - 1].second + f * (t[i].second - t[i - 1].second);
  }
  return t.back().second;
}

const HardwareProfile& HardwareCatalog::profile(const std::string& name) const {
  for (const auto& p : profiles)
    if (lower(p.name) == lower(name)) return p;
  std::string known;
  for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
  fail("unknown hardware '", name, "' (", origin, " has: ", known, ")");
}

std::vector<std::string> HardwareCatalog::names() const {
  std::vector<std::string> out;
  for (const auto& p : profiles) out.push_back(p.name);
  return out;
}

HardwareCatalog parse_hardware(const json& j, const std::string& origin) {
  FieldReader r(j, origin);
  HardwareCatalog c;
  c.origin = origin;
  std::string format = r.string("format");
  if (format != "dsinfer-hardware-1")
    r.fail("format", "is '", format, "'; this dsinfer reads 'dsinfer-hardware-1'");
  const json& profiles = r.array("profiles", 1);
  for (size_t i = 0; i < profiles.size(); ++i) {
    c.profiles.push_back(parse_profile(profiles[i], origin, str("profiles[", i, "]")));
    for (size_t k = 0; k + 1 < c.profiles.size(); ++k)
      if (lower(c.profiles[k].name) == lower(c.profiles.back().name))
        r.fail(str("profiles[", i, "].name"), "repeats '", c.profiles.back().name, "'");
  }
  c.deepep = parse_deepep(r.object("deepep"), origin);
  c.kernels = parse_kernels(r.object("kernels"), origin);
  r.allow("note");
  r.finish();
  return c;
}

HardwareCatalog load_hardware(const std::string& path) {
  // A regular file only (a FIFO would block), nesting-limited like every JSON dsinfer reads.
  return parse_hardware(parse_json(read_regular_file(path, "hardware file"), path), path);
}

std::vector<std::string> hardware_search_paths(const std::string& exe_path) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  if (const char* env = std::getenv("DSINFER_HARDWARE_FILE"); env && *env) out.push_back(env);
  std::error_code ec;
  fs::path exe = fs::weakly_canonical(fs::path(exe_path), ec);
  if (!ec && !exe_path.empty()) {
    // The binary lives in a build folder: inside the source tree (build/dsinfer) or installed
    // beside its data.
    fs::path dir = exe.parent_path();
    out.push_back((dir / "data" / "hardware.json").string());
    out.push_back((dir.parent_path() / "data" / "hardware.json").string());
  }
  out.push_back("data/hardware.json");
  return out;
}

std::string find_hardware_file(const std::string& exe_path) {
  std::string tried;
  for (const auto& p : hardware_search_paths(exe_path)) {
    if (std::filesystem::exists(p)) return p;
    tried += (tried.empty() ? "" : ", ") + p;
  }
  fail("no hardware profile file found (looked at ", tried,
       "); pass --hardware-file PATH or set DSINFER_HARDWARE_FILE to the repository's data/hardware.json");
}

}  // namespace dsinfer::plan
