// Prefill unit: one forward step of `tokens_per_gpu` computed tokens on every GPU, split into
// micro-batches that alternate between the compute stream and DeepEP's normal kernels.
#include <cmath>

#include "base/error.h"
#include "plan/comm_model.h"
#include "plan/cost_model.h"
#include "plan/load_balance.h"
#include "plan/pipeline_sim.h"
#include "plan/simulator.h"
#include "plan/unit_layout.h"

namespace dsinfer::plan {

void validate(const PrefillOptions& o) {
  if (o.nodes < 1) fail("--prefill-nodes must be at least 1, got ", o.nodes);
  if (o.redundant_experts < 0) fail("--redundant-experts must not be negative, got ", o.redundant_experts);
  if (!(o.tokens_per_gpu >= 1)) fail("--prefill-tokens-per-gpu must be at least 1, got ", o.tokens_per_gpu);
  if (!(o.mean_prompt_tokens >= 1)) fail("--prompt-len must be at least 1 token, got ", o.mean_prompt_tokens);
  if (!(o.cache_hit_rate >= 0 && o.cache_hit_rate < 1))
    fail("--cache-hit must be a share in [0, 1), got ", o.cache_hit_rate);
  if (!(o.length_cv >= 0)) fail("--length-cv must not be negative, got ", o.length_cv);
  if (!(o.expert_imbalance >= 1)) fail("--expert-imbalance is slowest/mean load and must be >= 1, got ", o.expert_imbalance);
  if (o.micro_batches < 1 || o.micro_batches > 2) fail("--micro-batches must be 1 or 2, got ", o.micro_batches);
}

namespace {

}  // namespace

PhaseResult simulate_prefill(const model::ModelConfig& model, const HardwareCatalog& catalog,
                             const HardwareProfile& hw, const PrefillOptions& opt) {
  validate(opt);
  CostModel cm(model, hw, catalog.kernels);
  UnitLayout unit = make_unit_layout(cm, hw, opt.nodes, opt.redundant_experts, opt.mtp, "--prefill-nodes");
  const double h = opt.cache_hit_rate;
  const int mbs = opt.micro_batches;
  const double t = opt.tokens_per_gpu / mbs;                // computed tokens per micro-batch
  const double cached = t * h / (1 - h);                    // cached tokens they attend to
  const double miss_per_request = opt.mean_prompt_tokens * (1 - h);
  // Keys per computed query: the cached prefix plus half the computed part (causal), weighted by
  // tokens, so long prompts count more: E[P^2]/E[P] = E[P] (1 + cv^2).
  const double mean_context = (1 + h) / 2 * opt.mean_prompt_tokens * (1 + opt.length_cv * opt.length_cv);
  const double pairs = t * double(model.num_experts_per_tok);

  // DeepEP's normal kernels hold SMs for the whole overlapped step; the GEMMs get the rest.
  const bool ep = cm.has_moe() && unit.gpus > 1;
  const double sm_share = ep ? double(hw.sms) / double(hw.sms - catalog.deepep.normal_kernel_sms) : 1.0;
  const double compute_scale = sm_share / catalog.kernels.end_to_end;
  const double imbalance = ep ? expert_imbalance_factor(opt.expert_imbalance, pairs, unit.gpus) : 1.0;
  const CommCost comm = normal_mode_cost(model, hw, catalog.deepep, ep ? unit.gpus : 1, t);

  PipelineBuilder b;
  std::vector<std::vector<int>> prev(mbs);  // what the next layer of each micro-batch waits for
  auto compute = [&](const char* name, const OpCost& c, std::vector<int> deps, int layer, int stage, int mb,
                     double extra = 1.0) {
    return b.add(name, Lane::kCompute, c.seconds * compute_scale * extra, c.flops, std::move(deps), layer, stage, mb);
  };
  auto add_layer = [&](int layer, bool moe, bool mtp_layer) {
    for (int mb = 0; mb < mbs; ++mb) {
      std::vector<int> deps = prev[mb];
      if (mtp_layer) deps = {compute("MTP projection", cm.mtp_projection(t), deps, layer, kAttention, mb)};
      OpCost proj = cm.mla_prefill_projections(t, cached) + cm.layer_elementwise(t);
      if (moe) proj += cm.gate(t);
      int p = compute("MLA projections", proj, deps, layer, kAttention, mb);
      int a = compute("MLA attention core", cm.mla_prefill_attention(t, mean_context), {p}, layer, kAttention, mb);
      if (!moe) {
        prev[mb] = {compute("dense MLP", cm.dense_mlp(t), {a}, layer, kShared, mb)};
        continue;
      }
      int s = compute("shared experts", cm.shared_experts(t), {a}, layer, kShared, mb);
      int routed_dep = a;
      if (ep) routed_dep = b.add("dispatch", Lane::kNetwork, comm.dispatch_seconds * imbalance, 0, {a}, layer, kDispatch, mb);
      OpCost experts = cm.routed_experts(pairs, unit.local_experts) + cm.expert_elementwise(pairs, ep);
      int r = compute("routed experts", experts, {routed_dep}, layer, kRouted, mb, imbalance);
      int done = r;
      if (ep) done = b.add("combine", Lane::kNetwork, comm.combine_seconds * imbalance, 0, {r}, layer, kCombine, mb);
      prev[mb] = {done, s};
    }
  };
  const int layers = cm.num_layers();
  for (int l = 0; l < layers; ++l) add_layer(l, model.is_moe_layer(l), false);
  if (unit.mtp) add_layer(layers, cm.has_moe(), true);
  // Only each finished prompt's last position needs logits.
  for (int mb = 0; mb < mbs; ++mb)
    compute("LM head", cm.lm_head(std::max(1.0, t / miss_per_request)), prev[mb], layers + 1, kAttention, mb);

  PipelineResult run = run_pipeline(b.ops());
  PhaseResult r = phase_result("prefill", unit, hw, opt.nodes, run, model.quant.has_value());
  r.computed_tokens_per_s_per_gpu = opt.tokens_per_gpu / r.step_seconds;
  r.tokens_per_s_per_gpu = r.computed_tokens_per_s_per_gpu / (1 - h);
  r.tokens_per_s_per_node = r.tokens_per_s_per_gpu * hw.gpus_per_node;
  r.expert_imbalance = imbalance;
  r.mean_context = mean_context;
  r.nodes_per_token = ep && unit.gpus > hw.gpus_per_node
                          ? expected_nodes_per_token(model, (unit.gpus + hw.gpus_per_node - 1) / hw.gpus_per_node)
                          : 1;
  return r;
}

}  // namespace dsinfer::plan
