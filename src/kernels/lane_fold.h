// The one order in which the kernels reduce 16 lanes to one value, on every path: lanes i and
// i + 8 first, then i and i + 4, i and i + 2, and the last two (base/simd.h's hsum of an
// AVX-512 register; AVX2 and scalar code emulate it). Used where results must be the same bits
// on every path (dot, the sampling weights' sum).
#pragma once

namespace dsinfer::kernels::detail {

template <typename T>
T fold16(const T* l) {
  T t[8], u[4], v[2];
  for (int j = 0; j < 8; ++j) t[j] = l[j] + l[j + 8];
  for (int j = 0; j < 4; ++j) u[j] = t[j] + t[j + 4];
  for (int j = 0; j < 2; ++j) v[j] = u[j] + u[j + 2];
  return v[0] + v[1];
}

}  // namespace dsinfer::kernels::detail
