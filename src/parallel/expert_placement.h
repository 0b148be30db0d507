// Where each routed expert lives in an expert-parallel group: for every MoE layer, physical
// expert slots split evenly over the ranks (rank r holds slots [r * S, (r + 1) * S)), each slot
// holding one logical expert. Without redundancy there are n_routed slots and logical expert e
// sits in slot e (contiguous blocks of n_routed / N per rank); an EPLB plan (`dsinfer eplb --json`)
// may permute them and give hot experts several replicas. The model only ever sees logical ids:
// the executor maps each (token, expert) to one physical slot by a fixed rule — replica
// (token index mod replicas) — so every rank agrees without talking, and since replicas hold the
// same weights the result is the same whichever replica computes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "parallel/eplb.h"
#include "parallel/eplb_load.h"

namespace dsinfer::parallel {

class ExpertPlacement {
 public:
  ExpertPlacement() = default;
  // n_routed / num_ranks contiguous experts per rank (n_routed must divide evenly).
  static ExpertPlacement contiguous(const model::ModelConfig& cfg, int num_ranks);
  // From `dsinfer eplb --json` (its phy2log: one row of physical slots per MoE layer; its gpus,
  // when present, must equal num_ranks). Throws Error naming what does not fit this model and
  // group size.
  static ExpertPlacement from_eplb_json(const std::string& path, const model::ModelConfig& cfg, int num_ranks);
  // One row of physical slots (logical expert ids) per MoE layer, in layer order; `what` names
  // the source in errors. An EplbPlan's phy2log is exactly this (parallel/eplb.h).
  static ExpertPlacement from_phy2log(const std::vector<std::vector<int32_t>>& rows, const model::ModelConfig& cfg,
                                      int num_ranks, const std::string& what);

  // EPLB's plan (parallel/eplb.h) for `load` (one row per MoE layer) over num_slots physical slots
  // (n_routed + redundant, a multiple of num_ranks): what `--redundant-experts` places at start
  // and online EPLB re-places while serving.
  static ExpertPlacement from_load(const ExpertLoad& load, const model::ModelConfig& cfg, int num_ranks, int num_slots,
                                   EplbPolicy policy);

  // The most loaded rank over the mean rank under this placement, mean over MoE layers: each
  // expert's load spread evenly over its replicas (the replica rule spreads it so), summed per
  // rank. `load` has one row per MoE layer; 1 when nothing was routed.
  double rank_max_over_mean(const ExpertLoad& load) const;
  bool operator==(const ExpertPlacement& o) const;

  // Model layers placed: the main model's, then the MTP module's (place_mtp_layers).
  int num_layers() const { return int(layers_.size()); }
  int num_ranks() const { return num_ranks_; }
  int slots_per_rank() const { return slots_per_rank_; }
  int num_slots() const { return num_ranks_ * slots_per_rank_; }
  int num_logical() const { return num_logical_; }
  bool is_moe_layer(int layer) const { return size_t(layer) < layers_.size() && !layers_[size_t(layer)].phy2log.empty(); }

  // The logical expert in physical slot `slot` of model layer `layer`.
  int32_t logical(int layer, int slot) const { return layers_[size_t(layer)].phy2log[size_t(slot)]; }
  // The slot that computes logical expert `e` for the token at `token_index` of the step.
  int32_t slot_for(int layer, int32_t e, int64_t token_index) const {
    const Layer& L = layers_[size_t(layer)];
    const int32_t first = L.replica_offset[size_t(e)], count = L.replica_offset[size_t(e) + 1] - first;
    return L.replicas[size_t(first + int32_t(token_index % count))];
  }
  int rank_of_slot(int32_t slot) const { return slot / slots_per_rank_; }
  int local_of_slot(int32_t slot) const { return slot % slots_per_rank_; }
  // Logical experts rank `rank` holds in layer `layer`, in its local slot order.
  std::vector<int32_t> local_experts(int layer, int rank) const;
  // Redundant slots in the worst layer (0 without redundancy).
  int redundant_slots() const { return num_slots() - num_logical_; }

 private:
  struct Layer {
    bool operator==(const Layer& o) const { return phy2log == o.phy2log; }
    std::vector<int32_t> phy2log;         // [slots]
    std::vector<int32_t> replica_offset;  // [logical + 1] into replicas
    std::vector<int32_t> replicas;        // slots of each logical expert, ascending
  };
  int num_ranks_ = 1, slots_per_rank_ = 0, num_logical_ = 0;
  int main_layers_ = 0;        // the main model's layers; the MTP module's follow
  std::vector<Layer> layers_;  // per model layer, the MTP module's included; dense layers empty

  void index_layer(Layer& L) const;
  void place_mtp_layers(const model::ModelConfig& cfg);
};

}  // namespace dsinfer::parallel
