// Internal: the inner step shared by mla_decode and mla_prefill — R query rows against n key rows
// with an online softmax (flash attention's recurrence), so no score matrix larger than R x n
// ever exists. Generic, AVX2 and AVX-512 versions; chosen by kernels/cpu_features.h.
#pragma once

#include <cstdint>

namespace dsinfer::kernels::detail {

struct TileState {
  float* m;    // [R] running max of scaled scores (-inf before any key)
  float* l;    // [R] running sum of exp(score - m)
  float* acc;  // [R, dv] running sum of exp(score - m) * v
};

struct TileArgs {
  const float* q;  // row r at q + r * ldq, d values
  int64_t ldq, R, d, dv;
  const float* k;  // key t (tile-relative) at k + t * ldk, d values
  int64_t ldk;
  const float* v;  // value t at v + t * ldv, dv values
  int64_t ldv;
  int64_t n;               // keys in this tile
  const int64_t* visible;  // [R]: keys with tile-relative index < visible[r] are visible (clamped to n)
  float scale;
  float* scores;  // scratch [R, n]
  // Optional: bytes to bring into L2 while this tile computes (mla_decode passes the next KV
  // block, so its DRAM read overlaps this tile's arithmetic instead of stalling the next gather).
  const uint8_t* prefetch = nullptr;
  int64_t prefetch_bytes = 0;
  // Optional: the same keys transposed, kt[c * 64 + t] (zero past n): scores then run as a
  // register-blocked GEMM (6 queries x 64 keys) instead of dot products reduced across lanes.
  const float* kt = nullptr;
};

void attend_tile(const TileArgs& a, TileState& st);
// Whether the active path's tile reads TileArgs::kt (the generic tile ignores it, so callers
// need not build it there).
bool tile_reads_transposed_keys();

#if defined(__x86_64__)
void attend_tile_avx512(const TileArgs& a, TileState& st);  // attention_tile_avx512.cpp
void attend_tile_avx2(const TileArgs& a, TileState& st);    // attention_tile_avx2.cpp
#endif

}  // namespace dsinfer::kernels::detail
