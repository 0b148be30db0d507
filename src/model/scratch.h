// Scratch buffers of the forward pass grow to the largest step seen and are then reused, so a
// steady-state step allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

namespace dsinfer::model {

template <typename T>
void grow(std::vector<T>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
}

}  // namespace dsinfer::model
