#include "engine/sampling_params.h"

#include <cmath>


namespace dsinfer::engine {

bool SamplingParams::greedy() const { return !(temperature >= kGreedyTemperature); }

}  // namespace dsinfer::engine
