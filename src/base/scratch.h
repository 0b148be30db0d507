// Scratch buffers grow to the largest request seen and are then reused, so the steady state of
// the forward pass and its kernels allocates nothing.
#pragma once

#include <cstddef>
#include <vector>

#include "base/aligned_buffer.h"

namespace dsinfer {

template <typename T, typename Count>
void grow(std::vector<T>& v, Count n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
}

// The same for 64-byte-aligned scratch; growing does not keep the old contents.
template <typename T, typename Count>
void grow(AlignedBuffer<T>& b, Count n) {
  if (b.size() < size_t(n)) b.resize(size_t(n));
}

}  // namespace dsinfer
