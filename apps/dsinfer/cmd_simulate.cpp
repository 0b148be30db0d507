// dsinfer simulate: predicted prefill and decode throughput of one deployment unit of a model on
// a hardware profile, with where the time goes, as a table, JSON or a PNG chart.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "command.h"
#include "model/config.h"
#include "plan/accounting.h"
#include "plan/chart.h"
#include "plan/hardware.h"
#include "plan/measured_pipeline.h"
#include "plan/report.h"
#include "plan/simulator.h"

namespace dsinfer::app {
namespace {

std::string self_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

// --stage-costs FILE: the overlap model on costs bench/ep_bench measured (plan/measured_pipeline.h)
// instead of the cost model's; no model config or hardware profile is read.
int run_stage_costs(const std::string& path, bool json) {
  const plan::StageCosts costs = plan::load_stage_costs(path);
  const std::vector<plan::StageComparison> rows = plan::compare_stage_costs(costs);
  if (json) std::cout << plan::to_json(costs, rows).dump(2) << "\n";
  else std::cout << plan::format_stage_comparison(costs, rows);
  return 0;
}

int run_simulate(Args& args) {
  if (const auto stage_costs = args.get("stage-costs")) {
    const bool json = args.flag("json");
    for (const char* other : {"model", "hardware", "phase", "png"})
      if (args.get(other)) fail("--stage-costs reads everything from its file; drop --", other);
    args.finish();
    if (stage_costs->empty()) fail("--stage-costs needs a file name");
    return run_stage_costs(*stage_costs, json);
  }
  plan::PrefillOptions pre;
  plan::DecodeOptions dec;
  const std::string model_path = args.require("model");
  const std::string hw_name = args.require("hardware");
  const std::string hw_file = args.get_or("hardware-file", "");
  const std::string phase = args.get_or("phase", "both");
  const bool json = args.flag("json");
  const auto png = args.get("png");
  const double gpu_hour_usd = args.get_double("gpu-hour-usd", 2.0);

  pre.nodes = int(args.get_int("prefill-nodes", pre.nodes));
  pre.tokens_per_gpu = args.get_double("prefill-tokens-per-gpu", pre.tokens_per_gpu);
  pre.mean_prompt_tokens = args.get_double("prompt-len", pre.mean_prompt_tokens);
  pre.cache_hit_rate = args.get_double("cache-hit", pre.cache_hit_rate);
  dec.nodes = int(args.get_int("decode-nodes", dec.nodes));
  dec.mean_kv_tokens = args.get_double("kv-len", dec.mean_kv_tokens);
  dec.target_tokens_per_s = args.get_double("target-tps", dec.target_tokens_per_s);
  dec.batch_per_gpu = args.get_double("decode-batch", dec.batch_per_gpu);
  dec.mtp_acceptance = args.get_double("mtp-accept", dec.mtp_acceptance);
  dec.memory_utilization = args.get_double("mem-util", dec.memory_utilization);
  dec.workspace_gb = args.get_double("workspace-gb", dec.workspace_gb);
  // Shared by both phases.
  pre.redundant_experts = dec.redundant_experts = int(args.get_int("redundant-experts", pre.redundant_experts));
  pre.length_cv = dec.length_cv = args.get_double("length-cv", pre.length_cv);
  pre.expert_imbalance = dec.expert_imbalance = args.get_double("expert-imbalance", pre.expert_imbalance);
  pre.micro_batches = dec.micro_batches = int(args.get_int("micro-batches", pre.micro_batches));
  args.finish();

  if (phase != "both" && phase != "prefill" && phase != "decode")
    fail("--phase must be prefill, decode or both, got '", phase, "'");
  if (!(gpu_hour_usd > 0)) fail("--gpu-hour-usd must be greater than zero, got ", gpu_hour_usd);
  if (png && png->empty()) fail("--png needs a file name");
  pre.mtp = dec.mtp_acceptance > 0;
  plan::validate(pre);
  plan::validate(dec);

  model::ModelConfig model = model::load_config(model_path);
  plan::HardwareCatalog catalog = plan::load_hardware(hw_file.empty() ? plan::find_hardware_file(self_path()) : hw_file);
  const plan::HardwareProfile& hw = catalog.profile(hw_name);

  nlohmann::json out = {{"model", model_path}, {"hardware", hw.name}, {"hardware_file", catalog.origin},
                        {"gpu_hour_usd", gpu_hour_usd}};
  plan::ChartInput chart;
  chart.title = std::filesystem::path(model_path).filename().string() + " on " + hw.name + " (dsinfer simulate)";
  std::string text;
  out["options"] = {{"prefill", plan::to_json(pre)}, {"decode", plan::to_json(dec)}};
  if (phase != "decode") {
    plan::PhaseResult r = plan::simulate_prefill(model, catalog, hw, pre);
    r.usd_per_million_tokens = plan::usd_per_million_tokens(gpu_hour_usd, r.tokens_per_s_per_gpu);
    out["prefill"] = plan::to_json(r);
    text += plan::format_prefill(r, pre, gpu_hour_usd);
    chart.prefill = r;
  }
  if (phase != "prefill") {
    plan::PhaseResult r = plan::simulate_decode(model, catalog, hw, dec);
    r.usd_per_million_tokens = plan::usd_per_million_tokens(gpu_hour_usd, r.tokens_per_s_per_gpu);
    out["decode"] = plan::to_json(r);
    if (!text.empty()) text += "\n";
    text += plan::format_decode(r, dec, gpu_hour_usd);
    chart.decode = r;
    chart.target_tokens_per_s = dec.target_tokens_per_s;
    if (png || json) {
      chart.curve = plan::decode_curve(model, catalog, hw, dec);
      out["decode_curve"] = plan::to_json(chart.curve);
    }
  }
  if (png) {
    plan::write_chart(chart, *png);
    out["chart"] = *png;
  }
  if (json) {
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << text;
    if (png) std::cout << "\nchart written to " << *png << "\n";
  }
  return 0;
}

const Registration kRegistration{{
    "simulate",
    "predict a prefill and a decode unit's tokens/s per node and where the time goes",
    "--model CONFIG.json --hardware NAME [--hardware-file data/hardware.json] [--phase prefill|decode|both]\n"
    "       [--json] [--png CHART.png] [--gpu-hour-usd 2.0]\n"
    "  prefill unit:  --prefill-nodes 4  --prefill-tokens-per-gpu 16384  --prompt-len 4383  --cache-hit 0.563\n"
    "  decode unit:   --decode-nodes 18  --kv-len 4989  --target-tps 20  [--decode-batch N]  --mtp-accept 0.85\n"
    "                 --mem-util 0.90  --workspace-gb 5\n"
    "  both:          --redundant-experts 32  --length-cv 1.0  --expert-imbalance 1.40  --micro-batches 2\n"
    "   or: --stage-costs COSTS.json [--json]   (bench/ep_bench --stage-costs: predicted vs measured step times)\n"
    "Defaults are DeepSeek's production layouts and its published day of 2025-02-28; --mtp-accept 0 turns MTP off.\n"
    "Hardware names (H800, H100, H200, B200) come from data/hardware.json; docs/simulator.md explains the model.",
    run_simulate,
}};

}  // namespace
}  // namespace dsinfer::app
