#include "kernels/packed_matrix.h"

#include <algorithm>
#include <cstring>

#include "base/thread_pool.h"

namespace dsinfer::kernels {

int packed_position(DType dtype, int c) {
  const int j = c / 16, t = c % 16;
  switch (dtype) {
    case DType::kF8E4M3:  // see gemm_avx512.cpp: byte tables, unpack epi8, then shift/mask per word
      return (t / 4) * 16 + (j / 2) * 8 + (t % 4) * 2 + j % 2;
    case DType::kBF16:  // two 32-element vectors, unpack epi16 with zero per 128-bit lane
      return (j / 2) * 32 + (t / 4) * 8 + (j % 2) * 4 + t % 4;
    default:
      return c;
  }
}

namespace {

struct Source {
  WeightView w;
  int64_t first_row;  // in the stacked matrix
};

// Whether e4m3 blocks can stay e4m3: 128x128 blocks and every 64-row panel inside one scale row.
bool fp8_packable(const std::vector<Source>& parts) {
  for (size_t i = 0; i < parts.size(); ++i) {
    const WeightView& w = parts[i].w;
    if (w.dtype != DType::kF8E4M3 || w.block_rows != kScaleBlock || w.block_cols != kScaleBlock) return false;
    if (w.row0 % kPanelCols != 0 || parts[i].first_row % kPanelCols != 0) return false;
    if (i + 1 < parts.size() && w.rows % kPanelCols != 0) return false;
  }
  return true;
}

float source_value(const WeightView& w, int64_t r, int64_t c) {
  const size_t i = size_t(r * w.cols + c);
  switch (w.dtype) {
    case DType::kF32: return static_cast<const float*>(w.data)[i];
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::kF8E4M3: return e4m3_to_f32(static_cast<const uint8_t*>(w.data)[i]) * w.scale(r, c);
  }
  return 0;
}

void allocate(PackedMatrix& p, DType dtype, int64_t n, int64_t k) {
  p.dtype = dtype;
  p.n = n;
  p.k = k;
  p.panels = (n + kPanelCols - 1) / kPanelCols;
  p.k_blocks = (k + kScaleBlock - 1) / kScaleBlock;
  p.data.resize(size_t(p.panels) * p.panel_bytes());  // zeroed: padding columns stay 0
  if (dtype == DType::kF8E4M3) p.scales.assign(size_t(p.panels * p.k_blocks), 0.0f);
}

// Packs B[row, col] = get(row, col) element-wise; `raw` writes the stored element itself.
template <typename Put>
void fill_panels(const PackedMatrix& p, Put put) {
  parallel_for(size_t(p.panels), 1, [&](size_t b, size_t e) {
    for (size_t panel = b; panel < e; ++panel) put(int64_t(panel));
  });
}

}  // namespace

PackedMatrix pack_matrix_stacked(const std::vector<WeightView>& views) {
  std::vector<Source> parts;
  int64_t n = 0;
  const int64_t k = views.at(0).cols;
  DType dtype = views[0].dtype;
  for (const WeightView& w : views) {
    parts.push_back({w, n});
    n += w.rows;
    if (w.dtype != dtype) dtype = DType::kF32;
  }
  if (dtype == DType::kF16) dtype = DType::kF32;
  if (dtype == DType::kF8E4M3 && !fp8_packable(parts)) dtype = DType::kF32;

  PackedMatrix p;
  allocate(p, dtype, n, k);
  int pos[kPanelCols];
  for (int c = 0; c < kPanelCols; ++c) pos[c] = packed_position(dtype, c);
  fill_panels(p, [&](int64_t panel) {
    uint8_t* dst = p.data.data() + size_t(panel) * p.panel_bytes();
    for (int c = 0; c < kPanelCols; ++c) {
      const int64_t row = panel * kPanelCols + c;
      if (row >= n) break;
      const Source* s = &parts[0];
      for (const Source& cand : parts)
        if (row >= cand.first_row) s = &cand;
      const WeightView& w = s->w;
      const int64_t r = row - s->first_row;
      if (dtype == DType::kF8E4M3) {
        const uint8_t* src = static_cast<const uint8_t*>(w.data) + r * k;
        for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanelCols + pos[c]] = src[kk];
        if (c == 0)
          for (int64_t kb = 0; kb < p.k_blocks; ++kb) p.scales[size_t(panel * p.k_blocks + kb)] = w.scale(r, kb * kScaleBlock);
      } else if (dtype == DType::kBF16) {
        const uint16_t* src = static_cast<const uint16_t*>(w.data) + r * k;
        uint16_t* d = reinterpret_cast<uint16_t*>(dst);
        for (int64_t kk = 0; kk < k; ++kk) d[kk * kPanelCols + pos[c]] = src[kk];
      } else {
        float* d = reinterpret_cast<float*>(dst);
        for (int64_t kk = 0; kk < k; ++kk) d[kk * kPanelCols + pos[c]] = source_value(w, r, kk);
      }
    }
  });
  return p;
}

PackedMatrix pack_matrix(const WeightView& w) { return pack_matrix_stacked({w}); }

PackedMatrix pack_matrix_transposed(const WeightView& w) {
  const int64_t n = w.cols, k = w.rows;
  DType dtype = w.dtype;
  if (dtype == DType::kF16) dtype = DType::kF32;
  // B's k blocks are the source's row blocks: they must start at a scale-block boundary.
  if (dtype == DType::kF8E4M3 &&
      (w.block_rows != kScaleBlock || w.block_cols != kScaleBlock || w.row0 % kScaleBlock != 0))
    dtype = DType::kF32;
  PackedMatrix p;
  allocate(p, dtype, n, k);
  int pos[kPanelCols];
  for (int c = 0; c < kPanelCols; ++c) pos[c] = packed_position(dtype, c);
  fill_panels(p, [&](int64_t panel) {
    uint8_t* dst = p.data.data() + size_t(panel) * p.panel_bytes();
    const int64_t c0 = panel * kPanelCols, nc = std::min(kPanelCols, n - c0);
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t c = 0; c < nc; ++c) {
        const size_t src = size_t(kk * w.cols + c0 + c), at = size_t(kk * kPanelCols + pos[c]);
        if (dtype == DType::kF8E4M3) dst[at] = static_cast<const uint8_t*>(w.data)[src];
        else if (dtype == DType::kBF16) reinterpret_cast<uint16_t*>(dst)[at] = static_cast<const uint16_t*>(w.data)[src];
        else reinterpret_cast<float*>(dst)[at] = source_value(w, kk, c0 + c);
      }
    if (dtype == DType::kF8E4M3)
      for (int64_t kb = 0; kb < p.k_blocks; ++kb) p.scales[size_t(panel * p.k_blocks + kb)] = w.scale(kb * kScaleBlock, c0);
  });
  return p;
}

float packed_value(const PackedMatrix& b, int64_t row, int64_t col) {
  const int64_t panel = row / kPanelCols;
  const size_t at = size_t(col * kPanelCols + packed_position(b.dtype, int(row % kPanelCols)));
  const uint8_t* d = b.panel(panel);
  switch (b.dtype) {
    case DType::kF8E4M3: return e4m3_to_f32(d[at]) * b.scales[size_t(panel * b.k_blocks + col / kScaleBlock)];
    case DType::kBF16: return bf16_to_f32(reinterpret_cast<const uint16_t*>(d)[at]);
    default: return reinterpret_cast<const float*>(d)[at];
  }
}

}  // namespace dsinfer::kernels
