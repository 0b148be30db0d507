// Decode unit: one step decodes every running request by one position (two with an MTP draft),
// in two micro-batches through the five-stage pipeline (attention in two parts, dispatch, MoE,
// combine) with DeepEP's low-latency kernels, which move data without holding SMs.
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "plan/comm_model.h"
#include "plan/cost_model.h"
#include "plan/load_balance.h"
#include "plan/pipeline_sim.h"
#include "plan/simulator.h"
#include "plan/unit_layout.h"

namespace dsinfer::plan {

void validate(const DecodeOptions& o) {
  if (o.nodes < 1) fail("--decode-nodes must be at least 1, got ", o.nodes);
  if (o.redundant_experts < 0) fail("--redundant-experts must not be negative, got ", o.redundant_experts);
  if (!(o.mean_kv_tokens >= 1)) fail("--kv-len must be at least 1 token, got ", o.mean_kv_tokens);
  if (!(o.target_tokens_per_s > 0)) fail("--target-tps must be greater than zero, got ", o.target_tokens_per_s);
  if (!(o.batch_per_gpu >= 0)) fail("--decode-batch must not be negative, got ", o.batch_per_gpu);
  if (!(o.mtp_acceptance >= 0 && o.mtp_acceptance < 1))
    fail("--mtp-accept must be in [0, 1) (0 turns MTP off), got ", o.mtp_acceptance);
  if (!(o.length_cv >= 0)) fail("--length-cv must not be negative, got ", o.length_cv);
  if (!(o.expert_imbalance >= 1)) fail("--expert-imbalance is slowest/mean load and must be >= 1, got ", o.expert_imbalance);
  if (o.micro_batches < 1 || o.micro_batches > 2) fail("--micro-batches must be 1 or 2, got ", o.micro_batches);
  if (!(o.memory_utilization > 0 && o.memory_utilization <= 1))
    fail("--mem-util must be in (0, 1], got ", o.memory_utilization);
  if (!(o.workspace_gb >= 0)) fail("--workspace-gb must not be negative, got ", o.workspace_gb);
}

namespace {

struct Setup {
  const model::ModelConfig& model;
  const HardwareCatalog& catalog;
  const HardwareProfile& hw;
  const DecodeOptions& opt;
  const CostModel& cm;
  const UnitLayout& unit;
};

struct StepRun {
  PipelineResult run;
  double imbalance = 1, straggler = 1;
};

StepRun run_step(const Setup& s, double batch) {
  const auto& model = s.model;
  const auto& cm = s.cm;
  const int mbs = s.opt.micro_batches;
  const double q = s.unit.mtp ? 2 : 1;       // query tokens per request: last token (+ MTP draft)
  const double req = batch / mbs;            // requests per micro-batch
  const double tq = req * q;
  const double pairs = tq * double(model.num_experts_per_tok);
  const bool ep = cm.has_moe() && s.unit.gpus > 1;
  const double scale = 1 / s.catalog.kernels.end_to_end;

  StepRun out;
  out.imbalance = ep ? expert_imbalance_factor(s.opt.expert_imbalance, pairs, s.unit.gpus) : 1.0;
  out.straggler = attention_straggler_factor(s.opt.length_cv, req, s.unit.gpus);
  const CommCost comm = low_latency_cost(model, s.hw, s.catalog.deepep, ep ? s.unit.gpus : 1, tq);
  const CommCost mtp_comm = low_latency_cost(model, s.hw, s.catalog.deepep, ep ? s.unit.gpus : 1, req);

  PipelineBuilder b;
  std::vector<std::vector<int>> prev(mbs);
  auto compute = [&](const char* name, const OpCost& c, std::vector<int> deps, int layer, int stage, int mb,
                     double extra = 1.0) {
    return b.add(name, Lane::kCompute, c.seconds * scale * extra, c.flops, std::move(deps), layer, stage, mb);
  };
  // `tokens` queries per micro-batch at `qpr` per request.
  auto add_layer = [&](int layer, bool moe, bool mtp_layer) {
    const double qpr = mtp_layer ? 1 : q;
    const double tokens = req * qpr;
    const double lp = tokens * double(model.num_experts_per_tok);
    const CommCost& cc = mtp_layer ? mtp_comm : comm;
    for (int mb = 0; mb < mbs; ++mb) {
      std::vector<int> deps = prev[mb];
      if (mtp_layer) deps = {compute("MTP projection", cm.mtp_projection(tokens), deps, layer, kAttention, mb)};
      // Stage 1 of the pipeline: projections into the latent and the absorbed query.
      OpCost pre = cm.mla_decode_pre(tokens) + cm.layer_elementwise(tokens);
      if (moe) pre += cm.gate(tokens);
      int p = compute("MLA projections", pre, deps, layer, kAttention, mb);
      // Stage 2: attention over the latent cache, then W_UV and o_proj.
      int a = compute("MLA attention core", cm.mla_decode_attention(req, qpr, s.opt.mean_kv_tokens), {p}, layer,
                      kAttention, mb, out.straggler);
      int o = compute("MLA projections", cm.mla_decode_post(tokens), {a}, layer, kAttention, mb);
      if (!moe) {
        prev[mb] = {compute("dense MLP", cm.dense_mlp(tokens), {o}, layer, kShared, mb)};
        continue;
      }
      int sh = compute("shared experts", cm.shared_experts(tokens), {o}, layer, kShared, mb);
      int routed_dep = o;
      if (ep) routed_dep = b.add("dispatch", Lane::kNetwork, cc.dispatch_seconds * out.imbalance, 0, {o}, layer, kDispatch, mb);
      OpCost experts = cm.routed_experts(lp, s.unit.local_experts) + cm.expert_elementwise(lp, false);
      int r = compute("routed experts", experts, {routed_dep}, layer, kRouted, mb, out.imbalance);
      int done = r;
      if (ep) done = b.add("combine", Lane::kNetwork, cc.combine_seconds * out.imbalance, 0, {r}, layer, kCombine, mb);
      prev[mb] = {done, sh};
    }
  };
  const int layers = cm.num_layers();
  for (int l = 0; l < layers; ++l) add_layer(l, model.is_moe_layer(l), false);
  for (int mb = 0; mb < mbs; ++mb)
    prev[mb] = {compute("LM head", cm.lm_head(tq), prev[mb], layers, kAttention, mb)};
  if (s.unit.mtp) {
    // The MTP module drafts the next token from the verified one: one more decoder layer and
    // another pass through the (shared) LM head.
    add_layer(layers + 1, cm.has_moe(), true);
    for (int mb = 0; mb < mbs; ++mb) compute("LM head", cm.lm_head(req), prev[mb], layers + 2, kAttention, mb);
  }
  out.run = run_pipeline(b.ops());
  return out;
}

double tokens_per_step(const Setup& s) { return s.unit.mtp ? 1 + s.opt.mtp_acceptance : 1; }

// KV cache bytes one request of the mean length holds.
double kv_bytes_per_request(const Setup& s) { return s.cm.kv_bytes_per_token(s.unit.mtp) * s.opt.mean_kv_tokens; }

double max_batch(const Setup& s) {
  double free_bytes = s.hw.hbm_bytes * s.opt.memory_utilization - s.unit.weight_bytes - s.opt.workspace_gb * 1e9;
  return std::floor(std::max(0.0, free_bytes) / kv_bytes_per_request(s));
}

UnitLayout layout_for(const CostModel& cm, const HardwareProfile& hw, const DecodeOptions& opt) {
  validate(opt);
  return make_unit_layout(cm, hw, opt.nodes, opt.redundant_experts, opt.mtp_acceptance > 0, "--decode-nodes");
}

void check_memory(const Setup& s, double limit) {
  if (limit < 1)
    fail("decode: after ", s.unit.weight_bytes / 1e9, " GB of weights and ", s.opt.workspace_gb,
         " GB of workspace, no request of --kv-len ", s.opt.mean_kv_tokens, " tokens fits in ",
         s.opt.memory_utilization * 100, "% of a ", s.hw.name, "'s ", s.hw.hbm_bytes / 1e9,
         " GB; use more --decode-nodes or a shorter --kv-len");
}

}  // namespace

PhaseResult simulate_decode(const model::ModelConfig& model, const HardwareCatalog& catalog,
                            const HardwareProfile& hw, const DecodeOptions& opt) {
  CostModel cm(model, hw, catalog.kernels);
  UnitLayout unit = layout_for(cm, hw, opt);
  Setup s{model, catalog, hw, opt, cm, unit};
  const double limit = max_batch(s);
  check_memory(s, limit);
  const double per_step = tokens_per_step(s);
  auto speed = [&](const StepRun& x) { return per_step / x.run.makespan; };

  double batch = opt.batch_per_gpu;
  if (batch > limit)
    fail("--decode-batch ", batch, " needs ", batch * kv_bytes_per_request(s) / 1e9,
         " GB of KV cache per GPU but only ", limit, " requests of --kv-len ", opt.mean_kv_tokens, " fit");
  if (batch <= 0) {
    // Per-request speed falls as the batch grows: the largest batch that still meets the target.
    double lo = 1, hi = limit;
    if (speed(run_step(s, lo)) < opt.target_tokens_per_s) {
      batch = lo;
    } else {
      while (hi - lo > 0.5) {
        double mid = std::floor((lo + hi + 1) / 2);
        if (speed(run_step(s, mid)) >= opt.target_tokens_per_s) lo = mid;
        else hi = mid - 1;
      }
      batch = lo;
    }
  }
  StepRun step = run_step(s, batch);

  PhaseResult r = phase_result("decode", unit, hw, opt.nodes, step.run, model.quant.has_value());
  r.batch_per_gpu = batch;
  r.max_batch_by_memory = limit;
  r.tokens_per_step_per_request = per_step;
  r.per_request_tokens_per_s = speed(step);
  r.meets_target = r.per_request_tokens_per_s >= opt.target_tokens_per_s * (1 - 1e-9);
  r.tokens_per_s_per_gpu = batch * r.per_request_tokens_per_s;
  r.computed_tokens_per_s_per_gpu = r.tokens_per_s_per_gpu;
  r.tokens_per_s_per_node = r.tokens_per_s_per_gpu * hw.gpus_per_node;
  r.expert_imbalance = step.imbalance;
  r.attention_straggler = step.straggler;
  r.kv_gb_per_gpu = batch * kv_bytes_per_request(s) / 1e9;
  return r;
}

std::vector<DecodeCurvePoint> decode_curve(const model::ModelConfig& model, const HardwareCatalog& catalog,
                                           const HardwareProfile& hw, const DecodeOptions& opt) {
  CostModel cm(model, hw, catalog.kernels);
  UnitLayout unit = layout_for(cm, hw, opt);
  Setup s{model, catalog, hw, opt, cm, unit};
  const double limit = max_batch(s);
  check_memory(s, limit);
  std::vector<double> batches;
  for (double b = 1; b < limit; b *= 1.5) batches.push_back(std::floor(b));
  batches.push_back(limit);
  batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
  std::vector<DecodeCurvePoint> out;
  for (double b : batches) {
    StepRun x = run_step(s, b);
    double v = tokens_per_step(s) / x.run.makespan;
    out.push_back({b, v, b * v * hw.gpus_per_node});
  }
  return out;
}

}  // namespace dsinfer::plan
