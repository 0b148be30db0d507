#include "kernels/rope.h"

#include <algorithm>
#include <cmath>

namespace dsinfer::kernels {

namespace {
// The rotary dimension at which a frequency completes `rotations` turns over `max_pos` positions.
double correction_dim(double rotations, double dim, double base, double max_pos) {
  return dim * std::log(max_pos / (rotations * 2 * M_PI)) / (2 * std::log(base));
}
}  // namespace

double yarn_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

std::vector<double> rope_inv_freq(const RopeParams& p) {
  const int64_t half = p.dim / 2;
  std::vector<double> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) f[i] = 1.0 / std::pow(p.theta, double(2 * i) / double(p.dim));
  if (p.factor <= 1) return f;
  double low = std::floor(correction_dim(p.beta_fast, double(p.dim), p.theta, double(p.original_max_position)));
  double high = std::ceil(correction_dim(p.beta_slow, double(p.dim), p.theta, double(p.original_max_position)));
  low = std::max(low, 0.0);
  high = std::min(high, double(p.dim - 1));
  if (low == high) high += 0.001;  // avoid a zero-width ramp
  for (int64_t i = 0; i < half; ++i) {
    double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    double keep = 1.0 - ramp;  // 1: high-frequency dims keep their original frequency
    f[i] = f[i] / p.factor * (1.0 - keep) + f[i] * keep;
  }
  return f;
}

double rope_magnitude(const RopeParams& p) {
  return yarn_mscale(p.factor, p.mscale) / yarn_mscale(p.factor, p.mscale_all_dim);
}

RopeTables::RopeTables(const RopeParams& p) : inv_freq_(rope_inv_freq(p)), magnitude_(rope_magnitude(p)) {}

void RopeTables::fill(const int32_t* positions, int64_t num_positions, float* cos_out, float* sin_out) const {
  const int64_t half = half_dim();
  for (int64_t t = 0; t < num_positions; ++t)
    for (int64_t i = 0; i < half; ++i) {
      // In double: at positions near 160K an fp32 angle would be off by ~0.01 rad.
      double angle = double(positions[t]) * inv_freq_[size_t(i)];
      cos_out[t * half + i] = float(std::cos(angle) * magnitude_);
      sin_out[t * half + i] = float(std::sin(angle) * magnitude_);
    }
}

void rope_tables(const RopeParams& p, const int32_t* positions, int64_t num_positions, float* cos_out,
                 float* sin_out) {
  RopeTables(p).fill(positions, num_positions, cos_out, sin_out);
}

void apply_rope(float* x, int64_t count, int64_t stride, int64_t dim, const float* cos_row,
                const float* sin_row) {
  for (int64_t v = 0; v < count; ++v) {
    float* p = x + v * stride;
    for (int64_t i = 0; i < dim / 2; ++i) {
      float a = p[2 * i], b = p[2 * i + 1], c = cos_row[i], s = sin_row[i];
      p[2 * i] = a * c - b * s;
      p[2 * i + 1] = a * s + b * c;
    }
  }
}

}  // namespace dsinfer::kernels
