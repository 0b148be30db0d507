// ExpertLoad: the load statistics EPLB balances by — one row per MoE layer, one column per logical
// expert, each entry the number of tokens routed to that expert (or any non-negative weight). Its
// file form, the `--load` format of `dsinfer eplb` and of `dsinfer generate --dump-expert-load`, is
// a plain JSON array of arrays, load[layer][expert], so a recorded run can be replayed through the
// balancer and written by hand or by any script. Parsing validates everything a user can get wrong
// (ragged rows, negative, NaN or non-numeric entries, empty arrays) and names the offending entry.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsinfer::parallel {

struct ExpertLoad {
  int num_layers = 0;
  int num_experts = 0;
  std::vector<double> values;  // [num_layers][num_experts], row-major

  ExpertLoad() = default;
  ExpertLoad(int layers, int experts) : num_layers(layers), num_experts(experts), values(size_t(layers) * experts, 0.0) {}

  double& at(int layer, int expert) { return values[size_t(layer) * num_experts + expert]; }
  double at(int layer, int expert) const { return values[size_t(layer) * num_experts + expert]; }
  const double* row(int layer) const { return values.data() + size_t(layer) * num_experts; }
};

// From nested rows; throws Error on ragged rows or invalid entries.
ExpertLoad make_expert_load(const std::vector<std::vector<double>>& rows);

// Throws Error naming the first negative, NaN or infinite entry, or an empty matrix.
void validate_expert_load(const ExpertLoad& load);

// `source` names the text in error messages (a file name).
ExpertLoad parse_expert_load_json(const std::string& text, const std::string& source);
ExpertLoad read_expert_load_file(const std::string& path);

// Integral values are written as JSON integers so recorded counts round-trip exactly.
std::string expert_load_to_json(const ExpertLoad& load);
void write_expert_load_file(const ExpertLoad& load, const std::string& path);

}  // namespace dsinfer::parallel
