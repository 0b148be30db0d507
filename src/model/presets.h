// Named model shapes for `dsinfer make-model`: tiny ones for tests (each exercising a different
// corner of the architecture) and bench-v3-small, the benchmark model with DeepSeek-V3's routing,
// attention dims and rope scaling at a size this machine can run.
#pragma once

#include <string>
#include <vector>

#include "model/config.h"

namespace dsinfer::model {

std::vector<std::string> preset_names();
// Throws Error listing the valid names when `name` is unknown.
ModelConfig preset_config(const std::string& name);

}  // namespace dsinfer::model
