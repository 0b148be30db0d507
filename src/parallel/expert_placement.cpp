#include "parallel/expert_placement.h"

#include <algorithm>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json.h"
#include "base/read_file.h"

namespace dsinfer::parallel {

void ExpertPlacement::index_layer(Layer& L) const {
  L.replica_offset.assign(size_t(num_logical_) + 1, 0);
  for (int32_t e : L.phy2log) ++L.replica_offset[size_t(e) + 1];
  for (int e = 0; e < num_logical_; ++e) L.replica_offset[size_t(e) + 1] += L.replica_offset[size_t(e)];
  L.replicas.assign(L.phy2log.size(), 0);
  std::vector<int32_t> cursor(L.replica_offset.begin(), L.replica_offset.end() - 1);
  for (size_t s = 0; s < L.phy2log.size(); ++s) L.replicas[size_t(cursor[size_t(L.phy2log[s])]++)] = int32_t(s);
}

ExpertPlacement ExpertPlacement::contiguous(const model::ModelConfig& cfg, int num_ranks) {
  check(num_ranks >= 1, "the expert-parallel group needs at least one rank");
  const int64_t n = cfg.n_routed_experts;
  check(n == 0 || n % num_ranks == 0, "this model's ", n, " routed experts do not split evenly over ", num_ranks,
        " ranks; use a rank count that divides ", n, ", or an EPLB placement (--eplb-placement) with redundant experts");
  ExpertPlacement p;
  p.num_ranks_ = num_ranks;
  p.num_logical_ = int(n);
  p.slots_per_rank_ = int(n / num_ranks);
  p.layers_.resize(size_t(cfg.num_hidden_layers));
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    if (!cfg.is_moe_layer(l)) continue;
    Layer& L = p.layers_[size_t(l)];
    for (int32_t e = 0; e < int32_t(n); ++e) L.phy2log.push_back(e);
    p.index_layer(L);
  }
  p.place_mtp_layers(cfg);
  return p;
}

ExpertPlacement ExpertPlacement::from_eplb_json(const std::string& path, const model::ModelConfig& cfg, int num_ranks) {
  const nlohmann::json j = parse_json(read_regular_file(path, "the EPLB placement"), path);
  check(j.is_object() && j.contains("phy2log") && j["phy2log"].is_array(), path,
        ": not an EPLB placement (expected the output of `dsinfer eplb --json`, with a phy2log array)");
  // A plan records the GPUs it was made for (`dsinfer eplb --gpus P`). One made for another rank
  // count may still split evenly (a plan for 4 over 2 ranks), but its balance was computed for P
  // bins, so it is refused rather than silently used. A bare phy2log (written by hand) has no shape.
  if (j.contains("gpus")) {
    const auto& g = j["gpus"];
    check(g.is_number_integer() && g.get<int64_t>() > 0, path, ": gpus is ", g.dump(), ", not a number of GPUs");
    const int64_t gpus = g.get<int64_t>();
    check(gpus == num_ranks, path, ": the plan was made for ", gpus, " GPUs (dsinfer eplb --gpus ", gpus, ") but ",
          num_ranks, " ranks were started; plan it with --gpus ", num_ranks, " or start ", gpus, " ranks");
  }
  std::vector<std::vector<int32_t>> rows;
  for (size_t i = 0; i < j["phy2log"].size(); ++i) {
    const auto& row = j["phy2log"][i];
    check(row.is_array() && !row.empty(), path, ": phy2log[", i, "] is not a list of logical expert ids");
    rows.emplace_back();
    for (const auto& v : row) {
      // The range is from_phy2log's to check; here only that it is an id at all.
      check(v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX, path,
            ": phy2log[", i, "] holds ", v.dump(), ", not a logical expert id");
      rows.back().push_back(int32_t(v.get<int64_t>()));
    }
  }
  return from_phy2log(rows, cfg, num_ranks, path);
}

ExpertPlacement ExpertPlacement::from_phy2log(const std::vector<std::vector<int32_t>>& rows,
                                              const model::ModelConfig& cfg, int num_ranks, const std::string& what) {
  std::vector<int64_t> moe_layers;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l)
    if (cfg.is_moe_layer(l)) moe_layers.push_back(l);
  check(rows.size() == moe_layers.size(), what, ": phy2log has ", rows.size(), " layers but the model has ",
        moe_layers.size(), " MoE layers");
  ExpertPlacement p;
  p.num_ranks_ = num_ranks;
  p.num_logical_ = int(cfg.n_routed_experts);
  p.layers_.resize(size_t(cfg.num_hidden_layers));
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t slots = rows[i].size();
    check(slots > 0 && slots % size_t(num_ranks) == 0, what, ": ", slots,
          " physical slots per layer do not split evenly over ", num_ranks, " ranks (plan it with --gpus ", num_ranks,
          ")");
    check(p.slots_per_rank_ == 0 || size_t(p.slots_per_rank_) * size_t(num_ranks) == slots, what,
          ": every layer must have the same number of physical slots");
    p.slots_per_rank_ = int(slots / size_t(num_ranks));
    Layer& L = p.layers_[size_t(moe_layers[i])];
    std::vector<int> seen(size_t(p.num_logical_), 0);
    for (int32_t e : rows[i]) {
      check(e >= 0 && e < p.num_logical_, what, ": phy2log[", i, "] holds ", e, ", not a logical expert id in [0, ",
            p.num_logical_, ")");
      L.phy2log.push_back(e);
      seen[size_t(e)] = 1;
    }
    for (int e = 0; e < p.num_logical_; ++e) check(seen[size_t(e)], what, ": phy2log[", i, "] places no replica of expert ", e);
    p.index_layer(L);
  }
  p.place_mtp_layers(cfg);
  return p;
}

void ExpertPlacement::place_mtp_layers(const model::ModelConfig& cfg) {
  // The MTP module's block (model layer num_hidden_layers on) routes like any MoE layer, but
  // EPLB's loads and plans cover the main model only: its slot s holds expert s mod n_routed,
  // a placement that depends on nothing a plan changes, so a rebalance never moves its experts.
  main_layers_ = int(cfg.num_hidden_layers);
  layers_.resize(size_t(cfg.num_hidden_layers + cfg.num_nextn_predict_layers));
  for (int64_t l = cfg.num_hidden_layers; l < int64_t(layers_.size()); ++l) {
    if (!cfg.is_moe_layer(l) || slots_per_rank_ == 0) continue;
    Layer& L = layers_[size_t(l)];
    for (int s = 0; s < num_slots(); ++s) L.phy2log.push_back(int32_t(s % num_logical_));
    index_layer(L);
  }
}

ExpertPlacement ExpertPlacement::from_load(const ExpertLoad& load, const model::ModelConfig& cfg, int num_ranks,
                                           int num_slots, EplbPolicy policy) {
  EplbShape shape;
  shape.num_replicas = num_slots;
  shape.num_groups = std::max<int>(1, int(cfg.n_group));
  shape.num_nodes = 1;  // one expert-parallel group; its ranks are the GPUs
  shape.num_gpus = num_ranks;
  const EplbPlan plan = rebalance(load, shape, policy);
  std::vector<std::vector<int32_t>> rows;
  for (int l = 0; l < plan.num_layers; ++l)
    rows.emplace_back(plan.phy2log.begin() + int64_t(l) * plan.num_replicas,
                      plan.phy2log.begin() + int64_t(l + 1) * plan.num_replicas);
  return from_phy2log(rows, cfg, num_ranks, "the EPLB plan");
}

double ExpertPlacement::rank_max_over_mean(const ExpertLoad& load) const {
  double sum = 0;
  int layers = 0;
  for (int l = 0; l < main_layers_; ++l) {  // the MTP module's layers are not EPLB's
    const Layer& L = layers_[size_t(l)];
    if (L.phy2log.empty()) continue;
    check(layers < load.num_layers && load.num_experts == num_logical_, "an expert load of ", load.num_layers, " x ",
          load.num_experts, " does not fit this placement");
    sum += max_over_mean(gpu_loads(load.row(layers), load.num_experts, L.phy2log, num_ranks_));
    ++layers;
  }
  return layers ? sum / layers : 1.0;
}

bool ExpertPlacement::operator==(const ExpertPlacement& o) const {
  return num_ranks_ == o.num_ranks_ && slots_per_rank_ == o.slots_per_rank_ && num_logical_ == o.num_logical_ &&
         layers_ == o.layers_;
}

std::vector<int32_t> ExpertPlacement::local_experts(int layer, int rank) const {
  const Layer& L = layers_[size_t(layer)];
  return std::vector<int32_t>(L.phy2log.begin() + int64_t(rank) * slots_per_rank_,
                              L.phy2log.begin() + int64_t(rank + 1) * slots_per_rank_);
}

}  // namespace dsinfer::parallel
