// PNG chart of a simulation through gnuplot (Debian's gnuplot-nox, installed by
// scripts/setup.sh): left, each phase's step split by lane into where the time goes; right,
// decode throughput per node against per-request speed, with the target and operating point.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "plan/simulator.h"

namespace dsinfer::plan {

struct ChartInput {
  std::optional<PhaseResult> prefill;
  std::optional<PhaseResult> decode;
  std::vector<DecodeCurvePoint> curve;
  double target_tokens_per_s = 0;
  std::string title;
};

// The gnuplot program; data files are expected in `data_dir`.
std::string gnuplot_script(const ChartInput& in, const std::string& png_path, const std::string& data_dir);

// Writes the data and runs `gnuplot` (a name looked up on PATH, or a path). Throws
// dsinfer::Error saying so when gnuplot is missing or fails.
void write_chart(const ChartInput& in, const std::string& png_path, const std::string& gnuplot = "gnuplot");

// Full path of an executable named `name` on PATH (or `name` itself when it has a '/'), or "".
std::string find_executable(const std::string& name);

}  // namespace dsinfer::plan
