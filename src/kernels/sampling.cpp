#include "kernels/sampling.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dsinfer::kernels {

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

int32_t sample_temperature(const float* logits, int64_t n, float temperature, double u) {
  if (temperature <= 0) return argmax(logits, n);
  float mx = *std::max_element(logits, logits + n);
  std::vector<double> p(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += p[i] = std::exp(double(logits[i] - mx) / temperature);
  double target = u * sum, run = 0;
  for (int64_t i = 0; i < n; ++i) {
    run += p[i];
    if (run > target) return int32_t(i);
  }
  return int32_t(n - 1);
}

}  // namespace dsinfer::kernels
