// Rotary position embedding on interleaved pairs, as DeepSeek's reference applies it: elements
// (2i, 2i+1) of the rope part form one complex number rotated by position x freq_i. With YaRN
// (DeepSeek-V2/V3 rope_scaling) the frequencies blend interpolated and original values across a
// correction range, and cos/sin carry an attention-magnitude factor.
#pragma once

#include <cstdint>
#include <vector>

namespace dsinfer::kernels {

struct RopeParams {
  int64_t dim = 64;  // rotated dims (qk_rope_head_dim)
  double theta = 10000;
  // YaRN; factor 1 means plain RoPE.
  double factor = 1, beta_fast = 32, beta_slow = 1;
  int64_t original_max_position = 4096;
  double mscale = 1, mscale_all_dim = 0;
};

// The dim/2 inverse frequencies after YaRN correction.
std::vector<double> rope_inv_freq(const RopeParams& p);
// YaRN's attention-magnitude factor for a context extended `scale` times: 0.1 m ln(scale) + 1.
double yarn_mscale(double scale, double m);

// The factor cos and sin are multiplied by: mscale(factor, mscale) / mscale(factor, mscale_all_dim).
double rope_magnitude(const RopeParams& p);

// One model's rope: the YaRN-corrected frequencies and the magnitude, computed once at load so
// that filling a step's tables allocates nothing.
class RopeTables {
 public:
  explicit RopeTables(const RopeParams& p = {});
  // cos/sin tables [num_positions, dim/2] for the given positions.
  void fill(const int32_t* positions, int64_t num_positions, float* cos_out, float* sin_out) const;
  int64_t half_dim() const { return int64_t(inv_freq_.size()); }

 private:
  std::vector<double> inv_freq_;
  double magnitude_ = 1;
};

// RopeTables(p).fill(...), for one-off use.
void rope_tables(const RopeParams& p, const int32_t* positions, int64_t num_positions, float* cos_out,
                 float* sin_out);

// Rotates `count` vectors of p.dim floats starting at x, the i-th at x + i*stride, all at the
// position whose table row is given.
void apply_rope(float* x, int64_t count, int64_t stride, int64_t dim, const float* cos_row,
                const float* sin_row);

}  // namespace dsinfer::kernels
