// Vector primitives on fp32 arrays shared by the kernels. Every reduction runs in one fixed
// order that depends only on the length, so a row's result never depends on its neighbours
// (DESIGN.md, batch invariance).
#pragma once

#include <cstdint>

namespace dsinfer::kernels {

float dot(const float* a, const float* b, int64_t n);
void axpy(float alpha, const float* x, float* y, int64_t n);  // y += alpha * x

}  // namespace dsinfer::kernels
