#include "serve_accounting.h"

#include <cstdio>

#include "base/timer.h"

namespace dsinfer::app {

namespace {

plan::TokenCounts tokens_of(const engine::EngineMetrics& m) {
  plan::TokenCounts t;
  t.input_cache_hit = double(m.cached_prompt_tokens);
  t.input_cache_miss = double(m.prompt_tokens - m.cached_prompt_tokens);
  t.output = double(m.generation_tokens);
  return t;
}

}  // namespace

LiveAccounting::LiveAccounting(AccountingConfig config, double start_seconds)
    : config_(config), start_(start_seconds) {}

nlohmann::json LiveAccounting::report(const engine::EngineMetrics& m, double now) const {
  const double hours = (now - start_) / 3600.0;
  const plan::TokenCounts t = tokens_of(m);
  const plan::RevenueBreakdown r = plan::revenue_usd(config_.prices, t);
  const double cost = plan::gpu_cost_usd(config_.gpus, config_.gpu_hour_usd, hours);
  nlohmann::json j = {
      {"uptime_seconds", now - start_},
      {"tokens", {{"input_cache_hit", t.input_cache_hit}, {"input_cache_miss", t.input_cache_miss}, {"output", t.output}}},
      {"prices_usd_per_million",
       {{"input_cache_hit", config_.prices.input_cache_hit},
        {"input_cache_miss", config_.prices.input_cache_miss},
        {"output", config_.prices.output}}},
      {"gpus", config_.gpus},
      {"gpu_hour_usd", config_.gpu_hour_usd},
      {"revenue_usd",
       {{"input_cache_hit", r.input_cache_hit_usd},
        {"input_cache_miss", r.input_cache_miss_usd},
        {"output", r.output_usd},
        {"total", r.total_usd()}}},
      {"cost_usd", cost},
  };
  // Where the hits came from: RAM, or the disk tier (DeepSeek's 56.3% were disk hits on 3FS).
  // Both are billed at the hit price; the split says what the disk tier earns.
  const double disk = double(m.disk_cached_prompt_tokens), ram = t.input_cache_hit - disk;
  const double hit_price = config_.prices.input_cache_hit / 1e6;
  j["input_cache_hit_by_tier"] = {{"ram", {{"tokens", ram}, {"revenue_usd", ram * hit_price}}},
                                  {"disk", {{"tokens", disk}, {"revenue_usd", disk * hit_price}}}};
  // (revenue - cost) / cost is undefined until some cost has accrued.
  j["cost_profit_margin"] = cost > 0 ? nlohmann::json(plan::cost_profit_margin(r.total_usd(), cost)) : nlohmann::json();
  return j;
}

std::string LiveAccounting::prometheus(const engine::EngineMetrics& m, double now) const {
  nlohmann::json j = report(m, now);
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, const std::string& labels, double v) {
    char line[512];
    // One HELP/TYPE header per metric family, before its first sample.
    if (out.find(std::string("# TYPE ") + name + " ") == std::string::npos)
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    std::snprintf(line, sizeof line, "%s%s %.17g\n", name, labels.c_str(), v);
    out += line;
  };
  for (const char* kind : {"input_cache_hit", "input_cache_miss", "output"})
    metric("dsinfer_accounting_tokens_total", "counter", "Billed tokens of completed requests, by kind.",
           std::string("{kind=\"") + kind + "\"}", j["tokens"][kind].get<double>());
  for (const char* kind : {"input_cache_hit", "input_cache_miss", "output"})
    metric("dsinfer_accounting_revenue_usd_total", "counter", "Revenue at the configured prices, by kind of token.",
           std::string("{kind=\"") + kind + "\"}", j["revenue_usd"][kind].get<double>());
  metric("dsinfer_accounting_cost_usd_total", "counter", "GPU cost since start: gpus x gpu_hour_usd x hours.", "",
         j["cost_usd"].get<double>());
  if (!j["cost_profit_margin"].is_null())
    metric("dsinfer_accounting_cost_profit_margin", "gauge", "(revenue - cost) / cost since start; 5.45 means 545%.",
           "", j["cost_profit_margin"].get<double>());
  return out;
}

serve::AccountingHooks LiveAccounting::hooks() const {
  serve::AccountingHooks h;
  h.metrics_text = [this](const engine::EngineMetrics& m) { return prometheus(m, now_seconds()); };
  h.report = [this](const engine::EngineMetrics& m) { return report(m, now_seconds()); };
  return h;
}

}  // namespace dsinfer::app
