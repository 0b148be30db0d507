#include "plan/unit_layout.h"

#include <algorithm>

#include "base/error.h"

namespace dsinfer::plan {

namespace {
constexpr double kGB = 1e9;
}  // namespace

UnitLayout make_unit_layout(const CostModel& cm, const HardwareProfile& hw, int nodes, int redundant_experts,
                            bool want_mtp, const char* nodes_flag) {
  UnitLayout u;
  u.gpus = nodes * hw.gpus_per_node;
  u.mtp = want_mtp && cm.has_mtp();
  if (cm.has_moe()) {
    double copies = double(cm.config().n_routed_experts + redundant_experts);
    if (u.gpus > copies)
      fail(nodes_flag, " ", nodes, " gives ", u.gpus, " GPUs but there are only ", copies,
           " routed expert copies to spread over them; use fewer nodes or more --redundant-experts");
    u.local_experts = copies / u.gpus;
  }
  u.weight_bytes = cm.weight_bytes_per_gpu(u.local_experts, u.mtp);
  if (u.weight_bytes >= hw.hbm_bytes)
    fail("the model's weights need ", u.weight_bytes / kGB, " GB per GPU with ", u.gpus, " GPUs, more than the ",
         hw.hbm_bytes / kGB, " GB of a ", hw.name, "; raise ", nodes_flag);
  return u;
}

void fill_from_pipeline(const PipelineResult& run, const HardwareProfile& hw, bool fp8, PhaseResult& r) {
  r.step_seconds = run.makespan;
  r.compute_busy = run.busy[int(Lane::kCompute)];
  r.network_busy = run.busy[int(Lane::kNetwork)];
  // Clamp the rounding residue when the compute lane is busy the whole step.
  r.exposed_wait = std::max(0.0, r.step_seconds - r.compute_busy);
  r.breakdown.clear();
  for (Lane lane : {Lane::kCompute, Lane::kNetwork})
    for (const auto& b : run.busy_by_name)
      if (b.lane == lane) r.breakdown.push_back({b.name, lane == Lane::kNetwork ? "network" : "compute", b.seconds});
  r.model_flops_per_s_per_gpu = run.flops / run.makespan;
  r.mfu = r.model_flops_per_s_per_gpu / (fp8 ? hw.fp8_flops : hw.bf16_flops);
}

PhaseResult phase_result(const char* phase, const UnitLayout& unit, const HardwareProfile& hw, int nodes,
                         const PipelineResult& run, bool fp8) {
  PhaseResult r;
  r.phase = phase;
  r.hardware = hw.name;
  r.nodes = nodes;
  r.gpus = unit.gpus;
  r.gpus_per_node = hw.gpus_per_node;
  r.local_experts = unit.local_experts;
  r.weight_gb_per_gpu = unit.weight_bytes / 1e9;
  r.mtp = unit.mtp;
  fill_from_pipeline(run, hw, fp8, r);
  return r;
}

}  // namespace dsinfer::plan
