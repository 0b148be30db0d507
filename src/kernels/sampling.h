// Token selection from logits: greedy argmax and temperature sampling with a caller-owned RNG
// state, so a request's samples depend only on its own seed.
#pragma once

#include <cstdint>

#include "base/hash.h"

namespace dsinfer::kernels {

int32_t argmax(const float* logits, int64_t n);  // ties: the lowest id
float max_value(const float* x, int64_t n);

// Unnormalised softmax weights w[i] = exp((x[i] - shift) * scale) (shift = the max and scale =
// 1 / temperature give weights in (0, 1]); returns their sum, accumulated in double. One
// vectorised pass: a sampler over a 129K vocabulary calls it once per token instead of taking
// a double exp per entry in every pass.
double exp_weights(const float* x, int64_t n, float shift, float scale, float* w);

// splitmix64: a small, well-mixed generator for per-request sampling streams.
inline uint64_t splitmix64(uint64_t& state) { return mix64(state += 0x9e3779b97f4a7c15ull); }
inline double uniform01(uint64_t& state) { return double(splitmix64(state) >> 11) * 0x1.0p-53; }

}  // namespace dsinfer::kernels
