// Plain scalar references the optimised kernels are checked against: straight from the
// definitions, in double precision, with no blocking, vectors or threads.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "base/dtype.h"

namespace dsinfer::kernels::ref {

inline std::vector<float> randn(size_t n, uint32_t seed, float std = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, std);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Softmax attention of one query over keys/values given as callbacks, in double.
template <typename Score, typename Value>
std::vector<double> attend(int64_t n_keys, int64_t dv, Score score, Value value) {
  std::vector<double> s(static_cast<size_t>(n_keys));
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n_keys; ++j) mx = std::max(mx, s[size_t(j)] = score(j));
  double sum = 0;
  for (auto& x : s) sum += x = std::exp(x - mx);
  std::vector<double> out(size_t(dv), 0.0);
  for (int64_t j = 0; j < n_keys; ++j)
    for (int64_t c = 0; c < dv; ++c) out[size_t(c)] += s[size_t(j)] / sum * value(j, c);
  return out;
}

}  // namespace dsinfer::kernels::ref
