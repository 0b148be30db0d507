// Writes NumPy .npy files (format 1.0, little-endian float32, C order): the
// exchange format between dsinfer and its Python reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsinfer {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace dsinfer
