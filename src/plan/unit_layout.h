// UnitLayout: how a deployment unit places the model. Attention (and shared experts, dense
// layers, embeddings) are replicated on every GPU (DP attention); the routed experts plus their
// redundant copies are spread evenly over all GPUs of the unit (EP = DP = GPUs in the unit).
// Also turns the per-step pipeline result into the breakdown the reports show.
#pragma once

#include "plan/cost_model.h"
#include "plan/pipeline_sim.h"
#include "plan/simulator.h"

namespace dsinfer::plan {

struct UnitLayout {
  int gpus = 0;
  double local_experts = 0;   // routed expert copies per GPU
  double weight_bytes = 0;    // resident per GPU
  bool mtp = false;
};

// Throws naming `nodes_flag` when the unit is too small to hold the model or too large for the
// expert copies.
UnitLayout make_unit_layout(const CostModel& cm, const HardwareProfile& hw, int nodes, int redundant_experts,
                            bool want_mtp, const char* nodes_flag);

// Fills the step, busy times, breakdown and utilisation fields of `r` from a pipeline run.
void fill_from_pipeline(const PipelineResult& run, const HardwareProfile& hw, bool fp8, PhaseResult& r);

// A phase's result with what prefill and decode report alike: the unit's layout and the run.
PhaseResult phase_result(const char* phase, const UnitLayout& unit, const HardwareProfile& hw, int nodes,
                         const PipelineResult& run, bool fp8);

}  // namespace dsinfer::plan
