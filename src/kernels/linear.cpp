#include "kernels/linear.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/scratch.h"
#include "base/thread_pool.h"
#include "kernels/vec.h"

namespace dsinfer::kernels {

namespace {
// Rows of W dequantised together; the tile (kTileRows x cols fp32) stays in L1/L2 while every
// row of x passes over it.
constexpr int64_t kTileRows = 8;

thread_local std::vector<float> tl_tile;
}  // namespace

void linear(const float* x, int64_t m, int64_t ldx, const WeightView& w, float* y, int64_t ldy) {
  const int64_t n = w.rows, k = w.cols;
  const int64_t tiles = (n + kTileRows - 1) / kTileRows;
  // At least ~64K multiply-adds per task to amortise scheduling.
  size_t grain = size_t(std::max<int64_t>(1, 65536 / std::max<int64_t>(kTileRows * k * m, 1)));
  parallel_for(size_t(tiles), grain, [&](size_t tb, size_t te) {
    std::vector<float>& tile = tl_tile;
    grow(tile, kTileRows * k);
    for (size_t t = tb; t < te; ++t) {
      int64_t r0 = int64_t(t) * kTileRows, nr = std::min(kTileRows, n - r0);
      for (int64_t r = 0; r < nr; ++r) dequant_row(w, r0 + r, tile.data() + r * k);
      for (int64_t i = 0; i < m; ++i) {
        const float* xi = x + i * ldx;
        float* yi = y + i * ldy + r0;
        for (int64_t r = 0; r < nr; ++r) yi[r] = dot(xi, tile.data() + r * k, k);
      }
    }
  });
}

void linear_transposed(const float* x, int64_t m, int64_t ldx, const WeightView& w, float* y,
                       int64_t ldy) {
  const int64_t n = w.rows, k = w.cols;
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t i = 0; i < m; ++i) std::memset(y + i * ldy, 0, size_t(k) * sizeof(float));
  for (int64_t r = 0; r < n; ++r) {
    dequant_row(w, r, row.data());
    for (int64_t i = 0; i < m; ++i) axpy(x[i * ldx + r], row.data(), y + i * ldy, k);
  }
}

}  // namespace dsinfer::kernels
