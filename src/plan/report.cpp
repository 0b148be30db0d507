#include "plan/report.h"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace dsinfer::plan {

nlohmann::json to_json(const PhaseResult& r) {
  nlohmann::json breakdown = nlohmann::json::array();
  for (const auto& b : r.breakdown)
    breakdown.push_back({{"name", b.name}, {"lane", b.lane}, {"seconds_per_step", b.seconds},
                         {"share_of_step", b.seconds / r.step_seconds}});
  nlohmann::json j = {
      {"phase", r.phase},
      {"hardware", r.hardware},
      {"nodes", r.nodes},
      {"gpus", r.gpus},
      {"gpus_per_node", r.gpus_per_node},
      {"routed_experts_per_gpu", r.local_experts},
      {"mtp", r.mtp},
      {"step_seconds", r.step_seconds},
      {"tokens_per_s_per_gpu", r.tokens_per_s_per_gpu},
      {"tokens_per_s_per_node", r.tokens_per_s_per_node},
      {"computed_tokens_per_s_per_gpu", r.computed_tokens_per_s_per_gpu},
      {"compute_busy_seconds", r.compute_busy},
      {"network_busy_seconds", r.network_busy},
      {"compute_waiting_seconds", r.exposed_wait},
      {"breakdown", breakdown},
      {"model_flops_per_s_per_gpu", r.model_flops_per_s_per_gpu},
      {"mfu", r.mfu},
      {"expert_imbalance", r.expert_imbalance},
      {"weight_gb_per_gpu", r.weight_gb_per_gpu},
      {"usd_per_million_tokens", r.usd_per_million_tokens},
  };
  if (r.phase == "prefill") {
    j["input_tokens_per_s_per_gpu"] = r.tokens_per_s_per_gpu;
    j["input_tokens_per_s_per_node"] = r.tokens_per_s_per_node;
    j["mean_attention_context"] = r.mean_context;
    j["dispatch_nodes_per_token"] = r.nodes_per_token;
  } else {
    j["output_tokens_per_s_per_gpu"] = r.tokens_per_s_per_gpu;
    j["output_tokens_per_s_per_node"] = r.tokens_per_s_per_node;
    j["batch_per_gpu"] = r.batch_per_gpu;
    j["max_batch_by_memory"] = r.max_batch_by_memory;
    j["per_request_tokens_per_s"] = r.per_request_tokens_per_s;
    j["tokens_per_step_per_request"] = r.tokens_per_step_per_request;
    j["meets_target"] = r.meets_target;
    j["attention_straggler"] = r.attention_straggler;
    j["kv_gb_per_gpu"] = r.kv_gb_per_gpu;
  }
  return j;
}

nlohmann::json to_json(const std::vector<DecodeCurvePoint>& curve) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : curve)
    out.push_back({{"batch_per_gpu", p.batch_per_gpu},
                   {"per_request_tokens_per_s", p.per_request_tokens_per_s},
                   {"output_tokens_per_s_per_node", p.tokens_per_s_per_node}});
  return out;
}

nlohmann::json to_json(const PrefillOptions& o) {
  return {{"nodes", o.nodes},
          {"redundant_experts", o.redundant_experts},
          {"tokens_per_gpu", o.tokens_per_gpu},
          {"mean_prompt_tokens", o.mean_prompt_tokens},
          {"cache_hit_rate", o.cache_hit_rate},
          {"length_cv", o.length_cv},
          {"expert_imbalance", o.expert_imbalance},
          {"micro_batches", o.micro_batches},
          {"mtp", o.mtp}};
}

nlohmann::json to_json(const DecodeOptions& o) {
  return {{"nodes", o.nodes},
          {"redundant_experts", o.redundant_experts},
          {"mean_kv_tokens", o.mean_kv_tokens},
          {"target_tokens_per_s", o.target_tokens_per_s},
          {"batch_per_gpu", o.batch_per_gpu},
          {"mtp_acceptance", o.mtp_acceptance},
          {"length_cv", o.length_cv},
          {"expert_imbalance", o.expert_imbalance},
          {"micro_batches", o.micro_batches},
          {"memory_utilization", o.memory_utilization},
          {"workspace_gb", o.workspace_gb}};
}

namespace {

struct Out {
  std::string text;
  template <typename... A>
  void add(const char* fmt, A... args) {
    char line[512];
    std::snprintf(line, sizeof line, fmt, args...);
    text += line;
  }
};

void time_table(Out& o, const PhaseResult& r) {
  o.add("  where one step's time goes (one GPU, the slowest)   ms/step   %% of step\n");
  std::string lane;
  for (const auto& b : r.breakdown) {
    if (b.lane != lane && b.lane == "network")
      o.add("    %-8s %-38s %9.2f %10.1f%%\n", "compute", "waiting on the network (exposed)", r.exposed_wait * 1e3,
            100 * r.exposed_wait / r.step_seconds);
    o.add("    %-8s %-38s %9.2f %10.1f%%\n", b.lane != lane ? b.lane.c_str() : "", b.name.c_str(), b.seconds * 1e3,
          100 * b.seconds / r.step_seconds);
    lane = b.lane;
  }
  if (lane != "network")
    o.add("    %-8s %-38s %9.2f %10.1f%%\n", "", "waiting on the network (exposed)", r.exposed_wait * 1e3,
          100 * r.exposed_wait / r.step_seconds);
  o.add("    %-8s %-38s %9.2f %10.1f%%\n", "", "step", r.step_seconds * 1e3, 100.0);
}

}  // namespace

std::string format_prefill(const PhaseResult& r, const PrefillOptions& opt, double gpu_hour_usd) {
  Out o;
  o.add("prefill unit: %d node%s x %d %s = %d GPUs, EP%d + DP%d attention, %.2g routed experts per GPU%s\n", r.nodes,
        r.nodes == 1 ? "" : "s", r.gpus_per_node, r.hardware.c_str(), r.gpus, r.gpus, r.gpus, r.local_experts, r.mtp ? ", MTP layer" : "");
  o.add("  workload: %.0f computed tokens per GPU per step in %d micro-batch%s; prompts of %.0f tokens (cv %.2g), "
        "%.1f%% from the context cache\n",
        opt.tokens_per_gpu, opt.micro_batches, opt.micro_batches > 1 ? "es" : "", opt.mean_prompt_tokens,
        opt.length_cv, 100 * opt.cache_hit_rate);
  o.add("  => %.0f input tokens/s per GPU, %.0f per node (cache hits included; %.0f computed per GPU)\n",
        r.tokens_per_s_per_gpu, r.tokens_per_s_per_node, r.computed_tokens_per_s_per_gpu);
  time_table(o, r);
  o.add("  %.1f%% of dense peak in model FLOPs; expert imbalance x%.3f; dispatch reaches %.2f nodes per token; "
        "%.1f GB of weights per GPU\n",
        100 * r.mfu, r.expert_imbalance, r.nodes_per_token, r.weight_gb_per_gpu);
  o.add("  cost: $%.3f per million input tokens at $%.2f per GPU-hour\n", r.usd_per_million_tokens, gpu_hour_usd);
  return o.text;
}

std::string format_decode(const PhaseResult& r, const DecodeOptions& opt, double gpu_hour_usd) {
  Out o;
  o.add("decode unit: %d node%s x %d %s = %d GPUs, EP%d + DP%d attention, %.2g routed experts per GPU%s\n", r.nodes,
        r.nodes == 1 ? "" : "s", r.gpus_per_node, r.hardware.c_str(), r.gpus, r.gpus, r.gpus, r.local_experts,
        r.mtp ? ", MTP draft token" : "");
  o.add("  workload: mean KV length %.0f (cv %.2g), target %.3g tokens/s per request%s\n", opt.mean_kv_tokens,
        opt.length_cv, opt.target_tokens_per_s, r.mtp ? "" : ", no MTP");
  o.add("  batch %.0f requests per GPU (memory allows %.0f; %.1f GB of KV cache), %.2f tokens per step per request\n",
        r.batch_per_gpu, r.max_batch_by_memory, r.kv_gb_per_gpu, r.tokens_per_step_per_request);
  const char* miss = opt.batch_per_gpu > 0 ? " (BELOW the target at this --decode-batch)"
                                           : " (BELOW the target even at batch 1)";
  o.add("  => %.1f tokens/s per request%s; %.0f output tokens/s per GPU, %.0f per node\n", r.per_request_tokens_per_s,
        r.meets_target ? "" : miss, r.tokens_per_s_per_gpu, r.tokens_per_s_per_node);
  time_table(o, r);
  o.add("  %.1f%% of dense peak in model FLOPs; expert imbalance x%.3f; attention straggler x%.3f; %.1f GB of weights "
        "per GPU\n",
        100 * r.mfu, r.expert_imbalance, r.attention_straggler, r.weight_gb_per_gpu);
  o.add("  cost: $%.3f per million output tokens at $%.2f per GPU-hour\n", r.usd_per_million_tokens, gpu_hour_usd);
  return o.text;
}

}  // namespace dsinfer::plan
