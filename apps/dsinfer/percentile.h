// The p-th percentile (0-100) of samples, linearly interpolated between neighbours; 0 for none.
// What the load generators (`bench`, `disk-tier-bench`) report their distributions with.
#pragma once

#include <algorithm>
#include <vector>

namespace dsinfer::app {

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double idx = p / 100.0 * double(v.size() - 1);
  const size_t lo = size_t(idx);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - double(lo));
}

}  // namespace dsinfer::app
