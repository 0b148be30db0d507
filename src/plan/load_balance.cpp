#include "plan/load_balance.h"

#include <cmath>

namespace dsinfer::plan {

double expected_max_standard_normal(int n) {
  if (n <= 1) return 0;
  // E[max] = integral of x * n * phi(x) * Phi(x)^(n-1) dx; the integrand is negligible outside
  // [-8, 9] for any n a cluster has.
  const double lo = -8, hi = 9;
  const int steps = 8000;
  const double dx = (hi - lo) / steps;
  double sum = 0;
  for (int i = 0; i <= steps; ++i) {
    double x = lo + i * dx;
    double pdf = std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
    double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
    double w = (i == 0 || i == steps) ? 0.5 : 1.0;
    sum += w * x * n * pdf * std::pow(cdf, n - 1);
  }
  return sum * dx;
}

double expert_imbalance_factor(double systematic, double pairs_per_gpu, int gpus) {
  if (gpus <= 1 || pairs_per_gpu <= 0) return systematic;
  return systematic * (1 + expected_max_standard_normal(gpus) / std::sqrt(pairs_per_gpu));
}

double attention_straggler_factor(double length_cv, double requests, int gpus) {
  if (gpus <= 1 || requests <= 0 || length_cv <= 0) return 1;
  return 1 + expected_max_standard_normal(gpus) * length_cv / std::sqrt(requests);
}

}  // namespace dsinfer::plan
