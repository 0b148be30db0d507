// Internal to the EPLB (eplb.cpp): the pieces of the refined policy, which works on one node at a
// time — that node's experts, its slots, its GPUs — so group locality holds by construction. A
// placement is slot_expert[s], the node-local expert held by node slot s; slot s sits on the node's
// GPU s / (slots / gpus). Every placement here keeps at least one replica of every expert and the
// same number of slots per GPU. Not a public interface.
#pragma once

#include <cstdint>
#include <vector>

namespace dsinfer::parallel::detail {

// The most loaded GPU of a placement, each replica carrying load / replica count.
double placement_max_load(const std::vector<double>& load, int gpus, const std::vector<int32_t>& slot_expert);

// For two slots per GPU (DeepSeek's decode deployment): replica counts chosen for the packing that
// follows, not for the replicas alone. One redundant slot at a time goes to the expert whose extra
// replica gives the lowest most-loaded GPU after longest-first packing (DeepSeek's pick, the
// highest load per replica, wins ties). DeepSeek minimises the heaviest replica instead, which is
// not the same: a hot replica is only as good as the light partner it can share a GPU with.
// Returns the placement of that packing on 2 * gpus slots.
std::vector<int32_t> packing_aware_placement(const std::vector<double>& load, int gpus);

// Local search from a placement, rewritten in place; its most loaded GPU never gets heavier.
// Moves: swapping two slots' experts between the most loaded GPU and another, and moving a
// redundant replica from one expert to another (which changes both experts' replica counts).
void local_search_placement(const std::vector<double>& load, int gpus, std::vector<int32_t>& slot_expert);

// The refined policy on one node: the given DeepSeek placement after local search or, at two slots
// per GPU, the packing-aware placement after local search if that is strictly better.
void refine_node_placement(const std::vector<double>& load, int gpus, std::vector<int32_t>& slot_expert);

}  // namespace dsinfer::parallel::detail
