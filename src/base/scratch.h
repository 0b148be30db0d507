// Scratch buffers grow to the largest request seen and are then reused, so the steady state of
// the forward pass and its kernels allocates nothing.
#pragma once

#include <cstddef>
#include <vector>

namespace dsinfer {

template <typename T, typename Count>
void grow(std::vector<T>& v, Count n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
}

}  // namespace dsinfer
