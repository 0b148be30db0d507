// A small latent KV pool with recognisable contents, for the disk tier's tests.
#pragma once

#include <cstdint>
#include <vector>

#include "base/dtype.h"
#include "kernels/latent_cache.h"

namespace dsinfer::cache {

// Three layers of V3's latent rows, four blocks; salt 0: all zeros, else a pattern per salt.
struct Pool {
  kernels::KvCacheSpec spec;
  std::vector<uint8_t> bytes;
  kernels::KvCacheView view;
  Pool(DType dtype, uint8_t salt, int64_t blocks = 4) {
    spec.num_layers = 3;
    spec.dim = 576;
    spec.rope_dim = 64;
    spec.dtype = dtype;
    spec.block_size = 64;
    bytes.resize(size_t(blocks * spec.block_bytes()));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = salt ? uint8_t(i * 131 + salt) : 0;
    view = {bytes.data(), spec, blocks};
  }
  std::vector<uint8_t> block(int32_t b) const {  // every layer's rows of block b, in layer order
    std::vector<uint8_t> out;
    const size_t n = size_t(spec.block_size * spec.row_bytes());
    for (int64_t l = 0; l < spec.num_layers; ++l) {
      const auto* p = static_cast<const uint8_t*>(view.layer(l).base) + size_t(b) * n;
      out.insert(out.end(), p, p + n);
    }
    return out;
  }
};

inline std::vector<int32_t> tokens_of(int32_t salt) {
  std::vector<int32_t> t(64);
  for (int i = 0; i < 64; ++i) t[size_t(i)] = 1000 + i * 7 + salt;
  return t;
}

}  // namespace dsinfer::cache
