#include "kernels/weight_view.h"

#include "kernels/convert.h"

namespace dsinfer::kernels {

void dequant_row(const WeightView& w, int64_t r, float* out) {
  const int64_t n = w.cols;
  switch (w.dtype) {
    case DType::kF32: {
      const float* src = static_cast<const float*>(w.data) + r * n;
      for (int64_t i = 0; i < n; ++i) out[i] = src[i];
      return;
    }
    case DType::kBF16:
      bf16_rows_to_f32(static_cast<const uint16_t*>(w.data) + r * n, n, 1, n, out, n);
      return;
    case DType::kF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + r * n;
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(src[i]);
      return;
    }
    case DType::kF8E4M3: {
      const uint8_t* src = static_cast<const uint8_t*>(w.data) + r * n;
      for (int64_t c = 0; c < n; c += w.block_cols) {
        int64_t len = c + w.block_cols <= n ? w.block_cols : n - c;
        e4m3_to_f32_scaled(src + c, len, w.scale(r, c), out + c);
      }
      return;
    }
  }
}

}  // namespace dsinfer::kernels
